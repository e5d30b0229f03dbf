"""Training through the job system: what trains (never gold, never the held-out set), the
recorded training set reproduces the model, the evaluation, and failures leave no version
half made."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pytest
from model_helpers import PREDICTOR, SCHEMA, Labelled, run_jobs, start
from sqlalchemy import text

from labelfarm.client import LabelfarmAPIError
from labelfarm.jsonutil import loads
from labelfarm.ml.predictors import FieldSpec, FitTask, PredictTask, fit_task, predict_task
from labelfarm.services.models import inputs, training, versions
from labelfarm.services.models.store import model_store


def held_out(project_id: int, item_id: int, share: float) -> bool:
    """The held-out rule, written again: SHA-256 of the project and item ids below the share."""
    digest = hashlib.sha256(f"labelfarm held-out v1:{project_id}:{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def train(world: Any, worker: Any, lab: Labelled, **body: Any) -> dict:
    job = start(
        lab.manager, f"/projects/{lab.project.id}/models/train", {"predictor": PREDICTOR, **body}
    )
    assert job["state"] == "queued" and job["kind"] == "train"
    (ran,) = run_jobs(world, worker)
    assert ran.id == job["id"]
    return ran.to_dict()


def test_a_version_trains_on_labelled_items_and_never_on_gold_or_held_out(world, worker, labelled):
    lab = labelled
    job = train(world, worker, lab)
    assert job["state"] == "done", job
    got = lab.manager["client"].request("GET", f"/projects/{lab.project.id}/models/1")
    assert got["state"] == "ready" and got["version"] == 1 and got["predictor"] == PREDICTOR
    assert got["job_id"] == job["id"] and got["created_by"] == lab.manager["id"]
    assert got["fields"] == [SCHEMA["fields"][0]]
    store = model_store(world.ctx.settings)
    blob = store.get(got["training_set"])
    assert hashlib.sha256(blob).hexdigest() == got["training_sha256"]
    record = loads(blob)
    trained = [e["id"] for e in record["items"]]
    assert trained == sorted(trained)  # the order it trained in
    # held out: every item with a human label (reviewed or aggregated) below the share
    held = {i for i in lab.real if held_out(lab.project.id, i, 0.5)}
    assert 0 < len(held & set(lab.reviewed)) < len(lab.reviewed)  # the test means something
    assert 0 < len(held - set(lab.reviewed)) < len(set(lab.real) - set(lab.reviewed))
    assert not set(trained) & set(lab.gold), "gold never trains"
    assert not set(trained) & held, "held-out items never train"
    assert set(trained) == set(lab.real) - held  # every other labelled item does
    assert not set(trained) & set(lab.fresh)
    sources = {e["id"]: e for e in record["items"]}
    for item in lab.reviewed:
        if item not in held:
            assert sources[item]["source"] == "reviewed" and sources[item]["review_id"]
    plain = [i for i in lab.real if i not in lab.reviewed and i not in held]
    assert all(sources[i]["source"] == "aggregated" for i in plain)
    assert all(len(sources[i]["annotation_ids"]) == 1 for i in plain)
    assert record["schema_version"] == lab.project.schema_version == got["schema_version"]
    assert got["n_train"] == len(trained)
    ev = got["evaluation"]
    assert got["n_eval"] == ev["n"] == len(lab.gold) + len(held)
    assert ev["n_gold"] == len(lab.gold) and ev["n_reviewed"] == len(held)
    label = ev["fields"]["label"]
    assert label["accuracy"] >= 0.8 and set(label) >= {"macro_f1", "ece", "per_class", "confusion"}
    assert np.array(label["confusion"]).sum() == ev["n"]
    assert got["train_seconds"] is not None and got["train_seconds"] >= 0
    assert job["result"]["version"] == 1 and job["progress_done"] == job["progress_total"]


def test_the_recorded_training_set_reproduces_the_model(world, worker, labelled):
    lab = labelled
    train(world, worker, lab)
    version = world.db.run(versions.get_version, lab.project.id, 1)
    store = model_store(world.ctx.settings)
    header, examples = training.read_training_set(store.get(version.training_set))
    # from the training set alone: its items' inputs, its labels, its predictor and fields
    rows = world.db.run(inputs.input_rows, lab.project.id, [e.item_id for e in examples])
    items = inputs.to_inputs(world.ctx.media, rows)
    specs = tuple(FieldSpec.from_dict(f) for f in header["fields"])
    labels = {s.name: [e.label.get(s.name) for e in examples] for s in specs}
    again = fit_task(FitTask(header["predictor"], specs, header["params"], items, labels))
    probe_rows = world.db.run(inputs.input_rows, lab.project.id, lab.fresh + lab.gold)
    probe = inputs.to_inputs(world.ctx.media, probe_rows)
    stored = predict_task(PredictTask(version.predictor, store.get(version.artifact), probe))
    rebuilt = predict_task(PredictTask(header["predictor"], again, probe))
    assert np.array_equal(stored["label"], rebuilt["label"])


def test_versions_number_up_and_each_keeps_its_own_files(world, worker, labelled):
    lab = labelled
    train(world, worker, lab)
    train(world, worker, lab, params={"c": 2.0})
    listed = lab.manager["client"].request("GET", f"/projects/{lab.project.id}/models")
    assert [v["version"] for v in listed["versions"]] == [1, 2] and listed["promoted"] is None
    one, two = listed["versions"]
    assert two["params"] == {"c": 2.0} and one["artifact"] != two["artifact"]
    assert one["training_sha256"] != two["training_sha256"]  # each names its version


def test_a_failed_run_leaves_a_failed_version_and_a_retry_reuses_it(world, worker, labelled):
    lab = labelled
    store = model_store(world.ctx.settings)
    root = store.path("projects")
    store.fs.makedirs(store.root, exist_ok=True)
    # the model store cannot be written: a file stands where its folder must go
    store.fs.pipe_file(root, b"not a folder")
    job = start(lab.manager, f"/projects/{lab.project.id}/models/train", {"predictor": PREDICTOR})
    ran = run_jobs(world, worker)
    assert ran[-1].state == "failed" and ran[-1].attempts == ran[-1].max_attempts > 1
    listed = world.db.run(versions.list_versions, lab.project.id)
    assert [(v.version, v.state, v.job_id) for v in listed] == [(1, "failed", job["id"])]
    store.fs.rm_file(root)
    job2 = train(world, worker, lab)
    assert job2["state"] == "done"
    assert [v.state for v in world.db.run(versions.list_versions, lab.project.id)] == [
        "failed",
        "ready",
    ]


def test_a_version_left_training_by_a_dead_job_reads_failed(world, labelled):
    lab = labelled
    job_id = world.db.run(
        __import__("labelfarm.services.job_queue", fromlist=["enqueue"]).enqueue,
        kind="train",
        params={},
        now=world.clock(),
        project_id=lab.project.id,
    )
    world.db.run(
        versions.start_training,
        lab.project,
        job_id=job_id,
        predictor=PREDICTOR,
        params={},
        fields=[],
        created_by=None,
        now=world.clock(),
    )
    assert world.db.run(versions.get_version, lab.project.id, 1).state == "training"
    with world.db.engine.begin() as conn:
        conn.execute(text("UPDATE jobs SET state = 'failed' WHERE id = :j"), {"j": job_id})
    assert world.db.run(versions.get_version, lab.project.id, 1).state == "failed"


def test_bad_requests_are_refused_before_a_job_is_queued(world, labelled):
    lab = labelled
    client = lab.manager["client"]
    path = f"/projects/{lab.project.id}/models/train"
    with pytest.raises(LabelfarmAPIError) as unknown:
        client.request("POST", path, json={"predictor": "nope.v1"})
    assert unknown.value.status == 422 and PREDICTOR in unknown.value.message
    with pytest.raises(LabelfarmAPIError) as bad_field:
        client.request("POST", path, json={"predictor": PREDICTOR, "fields": ["nope"]})
    assert bad_field.value.status == 422
    with pytest.raises(LabelfarmAPIError) as bad_param:
        client.request("POST", path, json={"predictor": PREDICTOR, "params": {"nope": 1}})
    assert bad_param.value.status == 422
    text_only = world.project(
        lab.ws, name="notes", schema={"fields": [{"name": "note", "type": "text"}]}
    )
    with pytest.raises(LabelfarmAPIError) as nothing:
        client.request(
            "POST", f"/projects/{text_only.id}/models/train", json={"predictor": PREDICTOR}
        )
    assert nothing.value.status == 422 and "choice or multichoice" in nothing.value.message
    jobs = client.request("GET", f"/projects/{lab.project.id}/jobs")
    assert not [j for j in jobs.get("jobs", jobs) if j["kind"] == "train"]


def test_a_project_with_no_labels_fails_its_train_job_at_once(world, worker, tmp_path):
    ws = world.workspace()
    manager = world.user("boss", role="manager", workspace=ws)
    project = world.project(ws, schema=SCHEMA)
    world.add_items(project, 5, tmp_path)
    start(manager, f"/projects/{project.id}/models/train", {"predictor": PREDICTOR})
    (job,) = run_jobs(world, worker)
    assert job.state == "failed" and job.attempts == 1 and "no item has a label" in job.error
    (version,) = world.db.run(versions.list_versions, project.id)
    assert version.state == "failed"
