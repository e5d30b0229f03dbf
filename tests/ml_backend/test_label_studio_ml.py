"""The round trip with a real Label Studio ML backend: a model written with label-studio-ml
1.0.9's LabelStudioMLBase (backend/length_model.py), started as its own process on
127.0.0.1, reached through labelfarm's API, job worker and annotate API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ml_farm import Farm, make_farm
from ml_server import RealBackend, wait_for

from labelfarm.client import LabelfarmAPIError

pytestmark = pytest.mark.slow


@pytest.fixture
def farm(world: Any, tmp_path: Path) -> Farm:
    return make_farm(world, tmp_path)


def test_health_answers_through_the_api(farm: Farm, real_backend: RealBackend):
    found = farm.attach(real_backend.url)
    health = farm.manager["client"].request("GET", f"{farm.api}/{found['id']}/health")
    assert health["status"] == "UP" and health["answer"]["status"] == "UP"
    assert "model_dir" in health["answer"]  # as the package answers it


def test_predict_job_prefills_the_annotators_tasks(farm: Farm, real_backend: RealBackend):
    found = farm.attach(real_backend.url)
    farm.world.ctx.settings.ml_backend_batch_tasks = 4  # two calls for six items
    farm.start(found["id"], "predict")
    [ran] = farm.run_jobs()
    assert ran.state == "done", ran.error
    assert ran.result is not None
    assert ran.result["predicted"] == 6 and ran.result["refused"] == 0
    assert ran.result["model_version"] == "INITIAL"  # what the package's /setup answers
    tasks = farm.next_tasks()
    assert len(tasks) == 6
    for task in tasks:
        want = "fruit" if "apple" in farm.text_of(task) else "other"
        assert task["prediction"]["value"] == {"label": want}, task
        assert task["prediction"]["model"] == "length model"
        assert task["prediction"]["score"] == pytest.approx(len(farm.text_of(task)) / 100)
    listed = farm.manager["client"].request("GET", farm.api)["ml_backends"]
    assert listed[0]["model_version"] == "INITIAL"


def test_train_reaches_the_backends_fit(farm: Farm, real_backend: RealBackend):
    found = farm.attach(real_backend.url)
    tasks = farm.next_tasks(2)
    values = [
        {"id": f"c{n}", "task": t["task"], "value": {"label": "other"}} for n, t in enumerate(tasks)
    ]
    path = f"/projects/{farm.project.id}/submit"
    farm.annotator["client"].request("POST", path, json={"annotations": values})
    farm.start(found["id"], "train")
    [ran] = farm.run_jobs()
    assert ran.state == "done", ran.error
    assert ran.result is not None and ran.result["annotations_sent"] == 2
    fits = wait_for(lambda: len(real_backend.fits()) >= 2 and real_backend.fits())
    events = [json.loads(line) for line in fits]
    assert [e["event"] for e in events] == ["ANNOTATION_CREATED"] * 2
    results = [e["annotation"]["result"] for e in events]
    assert results[0] == [
        {
            "from_name": "label",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": ["other"]},
        }
    ]


def test_basic_auth_reaches_a_backend_behind_it(farm: Farm, real_backend_with_auth: RealBackend):
    url = real_backend_with_auth.url
    good = farm.attach(url, auth_user="labelfarm", auth_secret="s3cret pass")
    assert farm.manager["client"].request("GET", f"{farm.api}/{good['id']}/health")["status"]
    farm.start(good["id"], "predict", item_ids=[1])
    [ran] = farm.run_jobs()
    assert ran.state == "done" and ran.result is not None and ran.result["predicted"] == 1
    bad = farm.attach(url, title="no auth")
    with pytest.raises(LabelfarmAPIError) as err:
        farm.manager["client"].request("GET", f"{farm.api}/{bad['id']}/health")
    assert err.value.status == 502
    assert f"model server no auth ({url}): GET /health: refused with HTTP 401" in err.value.message


def test_a_timeout_fails_the_job_with_a_clear_error(
    world: Any, tmp_path: Path, real_backend: RealBackend
):
    """A predict call that outlives the timeout (the model takes 3 s over this text) fails
    the job, naming the server, the call and the setting."""
    farm = make_farm(world, tmp_path, ["ripen slowly"])
    settings = farm.world.ctx.settings
    settings.job_max_attempts = 1
    settings.ml_backend_timeout_seconds = 1
    found = farm.attach(real_backend.url)
    farm.start(found["id"], "predict")
    [ran] = farm.run_jobs()
    assert ran.state == "failed"
    assert str(ran.error) == (
        f"model server length model ({real_backend.url}): POST /predict: no answer within "
        "1 s (the setting ml_backend_timeout_seconds)"
    )
