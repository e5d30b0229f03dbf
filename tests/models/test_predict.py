"""Pre-labelling: the predict job's items, values and scores, resuming, replacing the
project's own older predictions (never imported or external ones), and the pre-fill
annotators are shown (the promoted version's first)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from model_helpers import PREDICTOR, Labelled, import_rows, item_ids, run_jobs, start, text_of
from sqlalchemy import text

from labelfarm.ml.predictors import PredictTask, predict_task
from labelfarm.services import job_queue
from labelfarm.services.models import inputs, training, versions
from labelfarm.services.models.store import model_store


def predictions_of(world: Any, project_id: int) -> list[Any]:
    with world.db.engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT id, item_id, model, model_version, value, score FROM predictions "
                    "WHERE project_id = :p ORDER BY id"
                ),
                {"p": project_id},
            )
        )


def trained(world: Any, worker: Any, lab: Labelled, n: int = 1, **body: Any) -> None:
    for _ in range(n):
        start(
            lab.manager,
            f"/projects/{lab.project.id}/models/train",
            {"predictor": PREDICTOR, **body},
        )
        assert [j.state for j in run_jobs(world, worker)] == ["done"]


def predict(world: Any, worker: Any, lab: Labelled, version: int, **body: Any) -> Any:
    job = start(lab.manager, f"/projects/{lab.project.id}/models/{version}/predict", body)
    assert job["kind"] == "predict" and job["params"]["version"] == version
    (ran,) = run_jobs(world, worker)
    assert ran.state == "done", ran.error
    return ran


def test_a_predict_job_fills_the_unlabelled_items_and_gold(world, worker, labelled):
    lab = labelled
    trained(world, worker, lab)
    job = predict(world, worker, lab, 1)
    rows = predictions_of(world, lab.project.id)
    by_item = {r.item_id: r for r in rows}
    assert set(by_item) == set(lab.fresh) | set(lab.gold)  # labelled items are done
    assert len(rows) == len(by_item) == job.result["predicted"] == job.progress_done
    assert {(r.model, r.model_version) for r in rows} == {(PREDICTOR, "1")}
    version = world.db.run(versions.get_version, lab.project.id, 1)
    store = model_store(world.ctx.settings)
    ids = sorted(by_item)
    items = inputs.to_inputs(world.ctx.media, world.db.run(inputs.input_rows, lab.project.id, ids))
    proba = predict_task(PredictTask(PREDICTOR, store.get(version.artifact), items))["label"]
    options = lab.project.schema.fields[0].options
    for k, item in enumerate(ids):
        from labelfarm.jsonutil import loads

        assert loads(by_item[item].value) == {"label": options[int(np.argmax(proba[k]))]}
        assert by_item[item].score == pytest.approx(float(proba[k].max()), abs=1e-6)


def test_a_predict_job_resumes_where_it_stopped(world, worker, labelled):
    lab = labelled
    trained(world, worker, lab)
    predict(world, worker, lab, 1)
    first = predictions_of(world, lab.project.id)
    again = predict(world, worker, lab, 1)
    assert again.result["predicted"] == 0 and predictions_of(world, lab.project.id) == first
    # a run that stopped half way: the items it had not reached are predicted, only they
    lost = [r.item_id for r in first][::2]
    with world.db.engine.begin() as conn:
        conn.execute(text(f"DELETE FROM predictions WHERE item_id IN ({','.join(map(str, lost))})"))
    resumed = predict(world, worker, lab, 1)
    assert resumed.result["predicted"] == len(lost)
    assert sorted(r.item_id for r in predictions_of(world, lab.project.id)) == sorted(
        r.item_id for r in first
    )


def test_chosen_items_only(world, worker, labelled):
    lab = labelled
    trained(world, worker, lab)
    chosen = [lab.fresh[0], lab.fresh[3], lab.real[0]]  # a labelled item too, when asked
    job = predict(world, worker, lab, 1, item_ids=chosen)
    assert job.result["predicted"] == 3
    assert sorted(r.item_id for r in predictions_of(world, lab.project.id)) == sorted(chosen)


def test_a_new_version_replaces_own_predictions_and_keeps_imported_ones(
    world, worker, labelled, tmp_path
):
    lab = labelled
    import_rows(
        world,
        lab.project,
        [
            {
                "data": {"text": text_of(90)},
                "predictions": [{"model": "vendor", "value": {"label": "apple"}}],
            }
        ],
        tmp_path,
    )
    trained(world, worker, lab, n=2)
    predict(world, worker, lab, 1)
    predict(world, worker, lab, 2)
    rows = predictions_of(world, lab.project.id)
    assert {r.model_version for r in rows if r.model == PREDICTOR} == {"2"}
    vendor = [r for r in rows if r.model == "vendor"]
    assert len(vendor) == 1 and vendor[0].model_version is None
    per_item: dict[int, int] = {}
    for r in rows:
        per_item[r.item_id] = per_item.get(r.item_id, 0) + 1
    assert per_item[vendor[0].item_id] == 2 and max(per_item.values()) == 2


def test_the_promoted_version_pre_fills_and_the_project_learns_it_has_predictions(
    world, worker, labelled
):
    lab = labelled
    ann = world.user("ann2", role="annotator", workspace=lab.ws)
    ann["client"].next(lab.project.id)  # the project is read (and cached) without predictions
    trained(world, worker, lab)
    client = lab.manager["client"]
    promoted = client.request("POST", f"/projects/{lab.project.id}/models/1/promote", json={})
    assert promoted["promoted"] is True and promoted["state"] == "ready"
    # the default version of a predict job is the promoted one
    world.db.run(
        job_queue.enqueue,
        kind="predict",
        params={},
        now=world.clock(),
        project_id=lab.project.id,
        created_by=lab.manager["id"],
    )
    assert run_jobs(world, worker)[0].result["version"] == 1
    # an external model server's prediction, newer than the version's
    with world.db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO predictions (project_id, item_id, model, value, score, created_at, "
                "model_version) SELECT project_id, item_id, 'backend', '{\"label\": \"cherry\"}', "
                "0.5, created_at, '1' FROM predictions WHERE project_id = :p"
            ),
            {"p": lab.project.id},
        )
    # no wait for the project cache: a project with a model version looks for predictions
    other = world.user("ann3", role="annotator", workspace=lab.ws)
    tasks = other["client"].next(lab.project.id, n=5)
    assert tasks and all(t["prediction"]["model"] == PREDICTOR for t in tasks)
    client.request("POST", f"/projects/{lab.project.id}/models/1/retire", json={})
    tasks = other["client"].next(lab.project.id, n=5)  # held: the same tasks, now the newest
    assert all(t["prediction"]["model"] == "backend" for t in tasks)


def test_promote_and_retire_are_audited_and_one_version_is_promoted(world, worker, labelled):
    lab = labelled
    trained(world, worker, lab, n=2)
    client = lab.manager["client"]
    base = f"/projects/{lab.project.id}/models"
    client.request("POST", f"{base}/1/promote", json={})
    client.request("POST", f"{base}/2/promote", json={})
    listed = client.request("GET", base)
    assert listed["promoted"] == 2 and [v["promoted"] for v in listed["versions"]] == [False, True]
    retired = client.request("POST", f"{base}/2/retire", json={})
    assert retired["state"] == "retired" and retired["promoted"] is False
    assert client.request("GET", base)["promoted"] is None
    from labelfarm.client import LabelfarmAPIError

    with pytest.raises(LabelfarmAPIError) as refused:
        client.request("POST", f"{base}/2/promote", json={})
    assert refused.value.status == 409
    with pytest.raises(LabelfarmAPIError) as cannot:
        client.request("POST", f"{base}/2/predict", json={})
    assert cannot.value.status == 409
    with world.db.engine.connect() as conn:
        actions = [
            (r.action, r.actor_id, r.details)
            for r in conn.execute(
                text(
                    "SELECT action, actor_id, details FROM audit_log "
                    "WHERE action LIKE 'model.%' ORDER BY id"
                )
            )
        ]
    assert [a[0] for a in actions] == ["model.promote", "model.promote", "model.retire"]
    assert all(a[1] == lab.manager["id"] for a in actions)
    assert '"previous":1' in actions[1][2].replace(" ", "")


def test_an_evaluate_job_evaluates_again(world, worker, labelled):
    lab = labelled
    trained(world, worker, lab)
    job = start(lab.manager, f"/projects/{lab.project.id}/models/1/evaluate")
    (ran,) = run_jobs(world, worker)
    assert ran.id == job["id"] and ran.state == "done"
    version = world.db.run(versions.get_version, lab.project.id, 1)
    assert ran.result["n_eval"] == version.n_eval == version.evaluation["n"]
    assert version.evaluation["left_out"] == 0


TAGS = {"apple": ["fruit"], "banana": ["fruit", "long"], "cherry": ["fruit", "red"]}


def test_choice_and_multichoice_fields_predict_valid_values(world, worker, tmp_path):
    from model_helpers import CLASSES, truth

    from labelfarm.jsonutil import loads

    ws = world.workspace()
    manager = world.user("boss", role="manager", workspace=ws)
    schema = {
        "fields": [
            {"name": "label", "type": "choice", "options": list(CLASSES)},
            {"name": "tags", "type": "multichoice", "options": ["fruit", "long", "red"], "min": 1},
            {"name": "note", "type": "text", "required": False},
        ]
    }
    project = world.project(ws, schema=schema, overlap=1)
    import_rows(world, project, [{"data": {"text": text_of(i)}} for i in range(45)], tmp_path)
    gold = [
        {
            "data": {"text": text_of(i)},
            "gold": {"label": CLASSES[i % 3], "tags": TAGS[CLASSES[i % 3]]},
        }
        for i in range(45, 54)
    ]
    import_rows(world, project, gold, tmp_path)
    ann = world.user("ann", role="annotator", workspace=ws)

    client = ann["client"]
    while tasks := client.next(project.id, n=50):
        client.submit(
            project.id,
            [
                {
                    "task": t["task"],
                    "value": {
                        "label": truth(t["data"]["text"]),
                        "tags": TAGS[truth(t["data"]["text"])],
                    },
                }
                for t in tasks
            ],
        )
    import_rows(world, project, [{"data": {"text": text_of(i)}} for i in range(54, 60)], tmp_path)
    start(manager, f"/projects/{project.id}/models/train", {"predictor": PREDICTOR})
    assert [j.state for j in run_jobs(world, worker)] == ["done"]
    version = world.db.run(versions.get_version, project.id, 1)
    assert [f["name"] for f in version.fields] == ["label", "tags"]
    tags_ev = version.evaluation["fields"]["tags"]
    labelled = item_ids(world, project.id, "AND n_submitted > 0 AND NOT is_gold")
    held = [i for i in labelled if training.in_held_out(project.id, i, project.holdout_share)]
    assert held  # labelled items below the held-out share evaluate too, with the gold
    assert tags_ev["n"] == 9 + len(held) and set(tags_ev["per_option"]) == {"fruit", "long", "red"}
    start(manager, f"/projects/{project.id}/models/1/predict")
    assert [j.state for j in run_jobs(world, worker)] == ["done"]
    rows = predictions_of(world, project.id)
    assert len(rows) == 6 + 9
    loaded = world.load(project.id)
    store = model_store(world.ctx.settings)
    ids = [r.item_id for r in rows]
    items = inputs.to_inputs(world.ctx.media, world.db.run(inputs.input_rows, project.id, ids))
    proba = predict_task(PredictTask(PREDICTOR, store.get(version.artifact), items))
    for k, r in enumerate(rows):
        value = loads(r.value)
        assert set(value) == {"label", "tags"}
        assert loaded.schema.validate(value) == value  # a valid answer, as a pre-fill must be
        p_tags = proba["tags"][k]
        expected = min(proba["label"][k].max(), float(np.prod(np.maximum(p_tags, 1 - p_tags))))
        assert r.score == pytest.approx(expected, abs=1e-6)
