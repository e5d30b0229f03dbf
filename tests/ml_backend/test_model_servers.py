"""Attaching model servers, and what the predict job does when a server misbehaves (a
stand-in server, on cue: garbage, slowness, a huge answer, a crash, wrong credentials)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from ml_farm import TEXTS, Farm, make_farm
from sqlalchemy import text

from labelfarm.client import LabelfarmAPIError
from labelfarm.services.ml_backend_client import parse_predictions
from labelfarm.services.models.training import in_held_out
from model_server_stub import StubServer, stub_server


@pytest.fixture
def farm(world: Any, tmp_path: Path) -> Farm:
    return make_farm(world, tmp_path)


@pytest.fixture
def server() -> Any:
    with stub_server() as s:
        s.field = ("label", "text", "fruit")
        yield s


def _error(call: Any) -> Any:
    with pytest.raises(LabelfarmAPIError) as err:
        call()
    return err.value


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://models.example.org", "the scheme must be http or https, not 'ftp'"),
        ("models.example.org:9090", "the scheme must be http or https"),
        ("http://", "no host name"),
        ("http://user:pw@models.example.org", "credentials in the address"),
        ("http://models.example.org/?next=1", "a query or fragment"),
        ("http://models.example.org:99999", "not an address"),
    ],
)
def test_a_bad_address_is_refused_saying_what_is_wrong(farm: Farm, url: str, reason: str):
    err = _error(lambda: farm.attach(url))
    assert err.status == 422
    assert err.details[0]["field"] == "url"
    assert reason in err.details[0]["reason"]
    assert farm.manager["client"].request("GET", farm.api)["ml_backends"] == []


def test_attach_list_detach_keeps_the_password_encrypted_and_audits(farm: Farm, server):
    found = farm.attach(server.url + "/", auth_user="lf", auth_secret="hunter2 horse")
    assert found["url"] == server.url  # the trailing slash dropped
    assert found["auth_user"] == "lf" and found["has_secret"] is True
    assert "auth_secret" not in found
    listed = farm.manager["client"].request("GET", farm.api)["ml_backends"]
    assert [b["id"] for b in listed] == [found["id"]] and "auth_secret" not in listed[0]
    with farm.world.db.engine.connect() as conn:
        stored = conn.execute(text("SELECT auth_secret FROM ml_backends")).scalar_one()
        assert "hunter2" not in stored and len(stored) > 20
    farm.manager["client"].request("DELETE", f"{farm.api}/{found['id']}")
    assert farm.manager["client"].request("GET", farm.api)["ml_backends"] == []
    err = _error(lambda: farm.manager["client"].request("DELETE", f"{farm.api}/{found['id']}"))
    assert err.status == 404
    with farm.world.db.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT action, details FROM audit_log WHERE action LIKE 'ml_backend.%'")
        ).all()
    assert [r[0] for r in rows] == ["ml_backend.attach", "ml_backend.detach"]
    assert "hunter2" not in rows[0][1] and server.url in rows[0][1]


def test_annotators_and_other_projects_cannot_reach_a_server(farm: Farm, server):
    found = farm.attach(server.url)
    err = _error(lambda: farm.annotator["client"].request("GET", farm.api))
    assert err.status == 403
    other = farm.world.project(farm.ws, name="other")
    path = f"/projects/{other.id}/ml-backends/{found['id']}/predict"
    err = _error(lambda: farm.manager["client"].request("POST", path, json={}))
    assert err.status == 404 and "no such model server" in err.message


def test_health_answers_what_the_server_said(farm: Farm, server):
    found = farm.attach(server.url)
    health = farm.manager["client"].request("GET", f"{farm.api}/{found['id']}/health")
    assert health["status"] == "UP" and health["answer"]["model_dir"] == "stub"
    server.auth = ("lf", "right")
    err = _error(lambda: farm.manager["client"].request("GET", f"{farm.api}/{found['id']}/health"))
    assert err.status == 502 and err.code == "model_server_failed"
    assert "length model" in err.message and "refused with HTTP 401" in err.message


def test_predict_job_writes_predictions_that_prefill_the_annotators_tasks(farm: Farm, server):
    found = farm.attach(server.url)
    job = farm.start(found["id"], "predict")
    assert job["state"] == "queued" and job["kind"] == "backend_predict"
    assert server.calls == []  # nothing is called while the request is answered
    [ran] = farm.run_jobs()
    assert ran.state == "done", ran.error
    assert ran.result is not None and ran.result["predicted"] == 6
    assert ran.result["model_version"] == "stub-1"
    predict = [body for m, p, body in server.calls if p == "/predict"]
    assert [len(b["tasks"]) for b in predict] == [6]  # batches of ml_backend_batch_tasks (16)
    assert predict[0]["tasks"][0]["data"] == {"text": "an apple a day"}
    assert '<Choices name="label"' in predict[0]["label_config"]
    tasks = farm.next_tasks()
    assert tasks and all(t["prediction"]["value"] == {"label": "fruit"} for t in tasks)
    assert {t["prediction"]["model"] for t in tasks} == {"length model"}
    with farm.world.db.engine.connect() as conn:
        versions = conn.execute(text("SELECT DISTINCT model_version FROM predictions")).all()
        backend_version = conn.execute(text("SELECT model_version FROM ml_backends")).scalar()
    assert versions == [("stub-1",)] and backend_version == "stub-1"


def test_predicting_again_replaces_the_servers_earlier_predictions(farm: Farm, server):
    found = farm.attach(server.url)
    farm.start(found["id"], "predict")
    farm.run_jobs()
    server.field = ("label", "text", "other")
    farm.world.clock.advance(5)
    farm.start(found["id"], "predict", item_ids=[1, 2])
    [ran] = farm.run_jobs()
    assert ran.result is not None and ran.result["predicted"] == 2
    with farm.world.db.engine.connect() as conn:
        rows = conn.execute(text("SELECT item_id, value FROM predictions ORDER BY item_id")).all()
    assert len(rows) == 6
    assert [r[1] for r in rows[:2]] == ['{"label":"other"}'] * 2


def _failed_job(farm: Farm, server: StubServer, mode: str) -> str:
    farm.world.ctx.settings.job_max_attempts = 1
    found = farm.attach(server.url)
    server.mode = mode
    farm.start(found["id"], "predict")
    [ran] = farm.run_jobs()
    assert ran.state == "failed"
    with farm.world.db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM predictions")).scalar() == 0
    return str(ran.error)


def test_a_garbage_answer_fails_the_job_saying_so(farm: Farm, server):
    error = _failed_job(farm, server, "garbage")
    assert f"model server length model ({server.url}): POST /predict" in error
    assert "the answer is not JSON: '<html>Internal proxy page</html>'" in error


def test_a_slow_server_times_out_with_a_clear_error(farm: Farm, server):
    farm.world.ctx.settings.ml_backend_timeout_seconds = 1
    error = _failed_job(farm, server, "slow")
    assert "POST /predict: no answer within 1 s (the setting ml_backend_timeout_seconds)" in error


def test_a_huge_answer_is_cut_off_not_read(farm: Farm, server):
    error = _failed_job(farm, server, "huge")
    assert "the answer is larger than 33554432 bytes" in error


def test_a_server_that_keeps_crashing_fails_after_retries(farm: Farm, server):
    error = _failed_job(farm, server, "error")
    assert "answered HTTP 500: Traceback: model crashed" in error
    assert sum(p == "/predict" for _, p, _ in server.calls) == 3  # tried, then retried twice


def test_a_wrong_number_of_predictions_fails_the_job(farm: Farm, server):
    error = _failed_job(farm, server, "wrong-count")
    assert "7 predictions for 6 tasks" in error


def test_results_the_schema_cannot_hold_fail_the_job_naming_the_problem(farm: Farm, server):
    server.field = ("colour", "text", "red")
    error = _failed_job(farm, server, "ok")
    assert "no prediction fits the project's schema (6 refused)" in error
    assert "no field named 'colour'" in error


def test_a_crash_once_is_retried_within_the_call(farm: Farm, server):
    found = farm.attach(server.url)
    server.mode = "fail-once"
    farm.start(found["id"], "predict")
    [ran] = farm.run_jobs()
    assert ran.state == "done" and ran.result is not None and ran.result["predicted"] == 6


def test_basic_auth_is_sent_and_wrong_credentials_are_named(farm: Farm, server):
    server.auth = ("lf", "right pass")
    good = farm.attach(server.url, auth_user="lf", auth_secret="right pass")
    farm.start(good["id"], "predict")
    [ran] = farm.run_jobs()
    assert ran.state == "done", ran.error
    farm.world.ctx.settings.job_max_attempts = 1
    bad = farm.attach(server.url, title="wrong", auth_user="lf", auth_secret="wrong")
    farm.start(bad["id"], "predict")
    [ran] = farm.run_jobs()
    assert ran.state == "failed"
    assert "POST /setup: refused with HTTP 401 (check auth_user and auth_secret)" in str(ran.error)


def test_train_sends_new_annotations_once_then_start_training(farm: Farm, server):
    found = farm.attach(server.url)
    tasks = farm.next_tasks(2)
    sent_values = [
        {"id": f"c{n}", "task": t["task"], "value": {"label": "fruit"}} for n, t in enumerate(tasks)
    ]
    path = f"/projects/{farm.project.id}/submit"
    farm.annotator["client"].request("POST", path, json={"annotations": sent_values})
    farm.start(found["id"], "train")
    [ran] = farm.run_jobs()
    assert ran.state == "done", ran.error
    hooks = [body for m, p, body in server.calls if p == "/webhook"]
    assert [h["action"] for h in hooks] == ["ANNOTATION_CREATED"] * 2 + ["START_TRAINING"]
    sent = hooks[0]["annotation"]["result"]
    assert sent == [
        {
            "from_name": "label",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": ["fruit"]},
        }
    ]
    assert "label_config" in hooks[0]["project"] and "completed_by" not in hooks[0]["annotation"]
    assert hooks[0]["task"]["data"]["text"] in [t["data"]["text"] for t in tasks]
    server.calls.clear()
    farm.start(found["id"], "train")
    farm.run_jobs()
    hooks = [body["action"] for m, p, body in server.calls if p == "/webhook"]
    assert hooks == ["START_TRAINING"]  # nothing new since the last training


def test_train_never_sends_the_held_out_items_that_evaluate_models(farm: Farm, server):
    found = farm.attach(server.url)
    client = farm.manager["client"]
    client.request("PATCH", f"/projects/{farm.project.id}", json={"holdout_share": 0.5})
    tasks = farm.next_tasks(len(TEXTS))
    values = [
        {"id": f"h{n}", "task": t["task"], "value": {"label": "fruit"}} for n, t in enumerate(tasks)
    ]
    path = f"/projects/{farm.project.id}/submit"
    farm.annotator["client"].request("POST", path, json={"annotations": values})
    with farm.world.db.engine.begin() as conn:
        made = conn.execute(text("SELECT id, item_id FROM annotations ORDER BY id")).all()
    for annotation_id, item_id in made:  # every item reviewed: half of them are held out
        client.request(
            "POST",
            f"/projects/{farm.project.id}/review/{item_id}",
            json={"decision": "accept", "annotation_id": annotation_id},
        )
    held_out = {i for _, i in made if in_held_out(farm.project.id, i, 0.5)}
    assert held_out and len(held_out) < len(made)  # the split leaves some of each here
    farm.start(found["id"], "train")
    [ran] = farm.run_jobs()
    assert ran.state == "done", ran.error
    sent = [
        body["task"]["id"]
        for m, p, body in server.calls
        if p == "/webhook" and body["action"] == "ANNOTATION_CREATED"
    ]
    assert sorted(sent) == sorted(i for _, i in made if i not in held_out)


@pytest.mark.parametrize(
    "answer",
    [
        {"results": [{"result": [], "score": 0.5, "model_version": "v2"}], "model_version": "v1"},
        {"results": [[]], "model_version": "v1"},
        [{"result": [], "score": 0.5, "model_version": "v2"}],
    ],
)
def test_predict_answers_in_each_shape_label_studio_ml_gives(answer: Any):
    [found] = parse_predictions(answer, 1)
    assert found.result == []
    assert found.model_version in ("v1", "v2")


def test_a_predict_answer_of_no_known_shape_is_refused():
    with pytest.raises(ValueError, match="expected"):
        parse_predictions({"predictions": []}, 1)
    with pytest.raises(ValueError, match=r"results\[0\]\.score: must be a number"):
        parse_predictions([{"result": [], "score": "high"}], 1)


def test_stored_media_goes_as_a_signed_link_the_server_can_open(world: Any, tmp_path: Path):
    from labelfarm.services.imports import import_items
    from media_files import png

    world.ctx.settings.public_url = "https://labelfarm.example.org"
    ws = world.workspace("photos")
    manager = world.user("manager", role="manager", workspace=ws)
    schema = {
        "data": {"image": "image"},
        "fields": [{"name": "kind", "type": "choice", "options": ["cat", "dog"]}],
    }
    project = world.project(ws, schema=schema, gold_rate=0.0)
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "tabby.png").write_bytes(png((40, 30)))
    import_items(
        world.db, project, folder, "folder", media=world.ctx.media, now=world.clock(), user_id=None
    )
    with stub_server() as server:
        server.field = ("kind", "image", "cat")
        api = f"/projects/{project.id}/ml-backends"
        found = manager["client"].request("POST", api, json={"url": server.url})
        manager["client"].request("POST", f"{api}/{found['id']}/predict", json={})
        farm = Farm(world, ws, manager, manager, project)
        [ran] = farm.run_jobs()
    assert ran.state == "done" and ran.result is not None, ran.error
    assert ran.result["predicted"] == 1
    [task] = next(body for _, p, body in server.calls if p == "/predict")["tasks"]
    link = task["data"]["image"]
    assert link.startswith("https://labelfarm.example.org/media/") and link.endswith("#tabby.png")
    assert "signature=" in link
    # the link opens the file, without a session or token
    path = link.removeprefix("https://labelfarm.example.org").split("#")[0]
    opened = httpx.Client(transport=world.transport, base_url="http://testserver").get(path)
    assert opened.status_code == 200 and opened.content == png((40, 30))
