"""Auto-accept end to end through the API: import, annotators label through next/submit, a
model trains, is promoted and predicts, the auto_accept job labels the items above the
thresholds (closed, marked in the export, spot checks left open and blind), and spot checks
that disagree withdraw a threshold, its items going back to humans."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from model_helpers import (
    CLASSES,
    PREDICTOR,
    SCHEMA,
    import_rows,
    item_ids,
    label_all,
    run_jobs,
    start,
    text_of,
    truth,
)
from sqlalchemy import text

from labelfarm.jobs import refit
from labelfarm.ml.auto_accept import clopper_pearson_lower
from labelfarm.services.models.training import in_held_out

TARGET = 0.9  # 29 right held-out predictions per class make a threshold (98% would take 149)
N_LABELLED, N_FRESH = 300, 150


def _rows(world: Any, sql: str, **params: Any) -> list[Any]:
    with world.db.engine.connect() as conn:
        return list(conn.execute(text(sql), params))


@pytest.fixture
def accepted(world: Any, worker: Any, tmp_path: Path) -> dict[str, Any]:
    """A project labelled by an annotator, a promoted model that predicted the rest, and an
    auto_accept run."""
    ws = world.workspace()
    manager = world.user("boss", role="manager", workspace=ws)
    project = world.project(
        ws,
        schema=SCHEMA,
        overlap=1,
        holdout_share=0.5,
        auto_accept_target=TARGET,
        spot_check_share=0.25,
    )
    import_rows(
        world, project, [{"data": {"text": text_of(i)}} for i in range(N_LABELLED)], tmp_path
    )
    ann = world.user("ann", role="annotator", workspace=ws)
    assert label_all(world, project.id, ann) == N_LABELLED
    labelled = item_ids(world, project.id)
    rows = [{"data": {"text": text_of(i)}} for i in range(N_LABELLED, N_LABELLED + N_FRESH)]
    import_rows(world, project, rows, tmp_path)
    fresh = [i for i in item_ids(world, project.id) if i not in labelled]
    path = f"/projects/{project.id}/models"
    start(manager, f"{path}/train", {"predictor": PREDICTOR})
    assert [j.state for j in run_jobs(world, worker)] == ["done"]
    manager["client"].request("POST", f"{path}/1/promote")
    start(manager, f"{path}/1/predict")
    # the promoted version's predict job queues auto_accept when the project has a target
    chain = run_jobs(world, worker)
    assert [j.kind for j in chain if j.kind in ("predict", "auto_accept")] == [
        "predict",
        "auto_accept",
    ]
    (ran,) = [j for j in chain if j.kind == "auto_accept"]
    assert ran.state == "done", ran.to_dict()
    return {
        "ws": ws,
        "manager": manager,
        "ann": ann,
        "project": world.load(project.id),
        "labelled": labelled,
        "fresh": fresh,
        "job": ran.to_dict(),
    }


def _label_all(world: Any, project_id: int, ann: dict, answer: Any) -> dict[int, dict]:
    """The annotator takes and answers every task it is given: the tasks by item id."""
    seen: dict[int, dict] = {}
    while tasks := ann["client"].next(project_id, n=50):
        for t, item in zip(tasks, world.item_ids(project_id, ann, tasks), strict=True):
            seen[item] = t
        entries = [
            {"task": t["task"], "value": {"label": answer(t["data"]["text"])}} for t in tasks
        ]
        ann["client"].submit(project_id, entries)
    return seen


def _export(user: dict, project_id: int) -> dict[int, Any]:
    lines = b"".join(user["client"].export_stream(project_id, format="jsonl")).splitlines()
    return {r["id"]: r for r in map(json.loads, lines)}


def _labels(world: Any, project_id: int) -> dict[int, Any]:
    return {
        r.item_id: r
        for r in _rows(
            world,
            "SELECT l.item_id, l.value, l.state, l.confidence, l.version, l.threshold_id, "
            "i.is_open, i.n_leased, i.n_submitted FROM auto_labels l "
            "JOIN items i ON i.id = l.item_id WHERE l.project_id = :p",
            p=project_id,
        )
    }


def test_items_above_the_thresholds_are_auto_labelled_closed_and_exported(world, accepted):
    a = accepted
    project, manager = a["project"], a["manager"]
    report = manager["client"].request("GET", f"/projects/{project.id}/auto-accept")
    assert report["target"] == TARGET and report["field"] == "label"
    assert [c["option"] for c in report["classes"]] == list(CLASSES)
    for c in report["classes"]:  # evidence enough for every class, and its bound holds
        assert c["state"] == "active" and c["threshold"] is not None, c
        ev = c["evidence"]
        assert ev["n"] >= 29 and ev["lower_bound"] >= TARGET
        assert ev["lower_bound"] == pytest.approx(clopper_pearson_lower(ev["correct"], ev["n"]))
    labels = _labels(world, project.id)
    assert labels and set(labels) <= set(a["fresh"])  # only items no one labelled
    assert report["auto_labelled"] == len(labels)
    assert report["auto_share"] == pytest.approx(
        len(labels) / len(a["labelled"] + a["fresh"]), abs=1e-6
    )
    held = {i for i in a["fresh"] if in_held_out(project.id, i, project.holdout_share)}
    assert held and not held & set(labels), "held-out items are never auto-labelled"
    bars = {c["option"]: c["threshold"] for c in report["classes"]}
    texts = {r.id: json.loads(r.data)["text"] for r in _rows(world, "SELECT id, data FROM items")}
    for item, r in labels.items():
        assert r.value == truth(texts[item]) and r.confidence >= bars[r.value] and r.version == 1
        assert (r.n_leased, r.n_submitted) == (0, 0)  # the queue's counters untouched
        assert r.is_open == (r.state == "spot_check")  # closed, unless a spot check
    states = [r.state for r in labels.values()]
    assert 0 < states.count("spot_check") < states.count("accepted")
    summary = a["job"]["result"]
    assert summary["accepted"] == states.count("accepted")
    assert summary["spot_checks"] == states.count("spot_check")
    # the export marks the model's labels and names the version
    exported = _export(manager, project.id)
    for item, r in labels.items():
        label = exported[item]["label"]
        assert label["method"] == "model" and label["model_version"] == 1
        assert label["value"] == {"label": r.value} and label["n_annotators"] == 0
    human = exported[a["labelled"][0]]["label"]
    assert human["method"] != "model" and "model_version" not in human
    # the annotator is handed the rest: spot checks, held-out and uncertain items, never an
    # auto-accepted one; a spot check looks like any other task
    tasks = _label_all(world, project.id, a["ann"], truth)
    handed = list(tasks)
    spot = [t for i, t in tasks.items() if i in labels]
    other = [t for i, t in tasks.items() if i not in labels]
    assert spot and other and {tuple(sorted(t)) for t in spot} == {tuple(sorted(other[0]))}
    not_accepted = [i for i in a["fresh"] if i not in labels or labels[i].state == "spot_check"]
    assert sorted(handed) == not_accepted
    exported = _export(manager, project.id)  # a human label wins over the model's
    for item, r in labels.items():
        assert (exported[item]["label"]["method"] == "model") == (r.state == "accepted")
    audit = _rows(world, "SELECT action FROM audit_log WHERE action LIKE 'auto_accept.%'")
    assert [r.action for r in audit] == ["auto_accept.run"]


def test_a_second_run_supersedes_and_never_labels_an_item_twice(world, worker, accepted):
    a = accepted
    project = a["project"]
    before = _labels(world, project.id)
    job = start(a["manager"], f"/projects/{project.id}/auto-accept/run")
    (ran,) = run_jobs(world, worker)
    assert ran.id == job["id"] and ran.state == "done"
    assert ran.result["accepted"] == 0 and ran.result["spot_checks"] == 0
    assert _labels(world, project.id) == before
    states = _rows(world, "SELECT state FROM auto_thresholds ORDER BY id")
    assert [r.state for r in states] == ["superseded"] * 3 + ["active"] * 3


def test_disagreeing_spot_checks_withdraw_the_threshold_and_reopen_its_items(
    world, worker, accepted
):
    a = accepted
    project, manager, ann = a["project"], a["manager"], a["ann"]
    labels = _labels(world, project.id)
    victim = "banana"  # humans say its spot checks are wrong
    wrong = {"apple": "cherry", "banana": "cherry", "cherry": "apple"}

    def answer(t: str) -> str:
        return wrong[truth(t)] if truth(t) == victim else truth(t)

    label_all(world, project.id, ann, answer)  # spot checks and the rest, blind
    refit.schedule(world.db, now=world.clock(), every=0.0)  # its spot-check update
    run_jobs(world, worker)
    report = manager["client"].request("GET", f"/projects/{project.id}/auto-accept")
    by = {c["option"]: c for c in report["classes"]}
    assert by[victim]["state"] == "withdrawn"
    spots = by[victim]["spot_checks"]
    assert spots["n"] > 0 and spots["correct"] == 0 and spots["precision"] == 0
    assert by[victim]["bound"] < TARGET
    for option in set(CLASSES) - {victim}:  # spot checks that agree keep theirs
        assert by[option]["state"] == "active" and by[option]["spot_checks"]["n"] > 0
        assert by[option]["spot_checks"]["correct"] == by[option]["spot_checks"]["n"]
        assert by[option]["bound"] >= TARGET
    after = _labels(world, project.id)
    assert set(after) == set(labels)  # marked withdrawn, never deleted
    theirs = [i for i, r in labels.items() if r.value == victim]
    assert theirs and all(after[i].state == "withdrawn" for i in theirs)
    assert all(after[i].state != "withdrawn" for i in labels if i not in theirs)
    closed = [i for i in theirs if labels[i].state == "accepted"]
    assert closed and all(after[i].is_open for i in closed)  # back to humans
    got = world.item_ids(project.id, ann, ann["client"].next(project.id, n=200))
    assert set(got) == set(closed)
    audit = _rows(
        world, "SELECT action, details FROM audit_log WHERE action = 'auto_accept.withdraw'"
    )
    assert len(audit) == 1 and json.loads(audit[0].details)["option"] == victim
    # the items' final labels are the humans' again: none is the model's
    exported = _export(manager, project.id)
    assert all(exported[i]["label"] is None for i in closed)


def test_the_report_is_for_managers_reviewers_and_clients_and_a_run_for_managers(world, accepted):
    a = accepted
    project = a["project"]
    client = world.user("cli", role="client", workspace=a["ws"])
    got = client["client"].request("GET", f"/projects/{project.id}/auto-accept")
    assert got["auto_labelled"] > 0
    with pytest.raises(Exception, match=r"403|forbidden"):
        a["ann"]["client"].request("GET", f"/projects/{project.id}/auto-accept")
    with pytest.raises(Exception, match=r"403|forbidden"):
        client["client"].request("POST", f"/projects/{project.id}/auto-accept/run")
