"""Label-error detection end to end: a project whose annotator got a few labels wrong, a
model version, the ``label_errors`` job (cross-validated through the worker), the suspects
in the review queue with their reason, reviewers' verdicts and the detector's precision."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from labelfarm.client import LabelfarmAPIError
from labelfarm.jobs.worker import Worker
from labelfarm.jsonutil import dumps
from labelfarm.services import job_queue
from labelfarm.services.imports import import_items

CLASSES = ("apple", "banana", "cherry")
WORDS = {
    "apple": ("apple pie", "green apple", "apple juice", "apfel"),
    "banana": ("banana split", "ripe banana", "banana bread", "platano"),
    "cherry": ("cherry tart", "red cherry", "cherry jam", "kirsche"),
}
SCHEMA = {"fields": [{"name": "label", "type": "choice", "options": list(CLASSES)}]}
PREDICTOR = "text-chargram-logreg.v1"
TRAIN = {"predictor": PREDICTOR, "params": {"c": 20.0}}  # a sharp model: few items
N_ITEMS = 60
PLANTED = (4, 17, 29, 42)  # item texts whose annotator answers a wrong class


def text_of(i: int) -> str:
    cls = CLASSES[i % 3]
    return f"{WORDS[cls][(i // 3) % 4]} number {i}"


def truth(text: str) -> str:
    return next(c for c, words in WORDS.items() if any(w in text for w in words))


def answer(text: str) -> str:
    """The annotator's answer: right, except on the planted items (the next class)."""
    number = int(text.rsplit(" ", 1)[1])
    right = truth(text)
    return CLASSES[(CLASSES.index(right) + 1) % 3] if number in PLANTED else right


@pytest.fixture
def worker(world: Any, settings: Any) -> Worker:
    tuned = settings.model_copy(update={"predict_batch_items": 16, "job_retry_seconds": 0.0})
    return Worker(tuned, world.db, world.ctx.media, name="w-errors", clock=world.clock)


def run_jobs(world: Any, worker: Worker) -> list[Any]:
    return [world.db.run(job_queue.get_job, j.id) for j in worker.run_until_idle()]


@pytest.fixture
def team(world: Any, tmp_path: Path) -> dict[str, Any]:
    ws = world.workspace()
    project = world.project(ws, schema=SCHEMA, overlap=1, holdout_share=0.0)
    path = tmp_path / f"items-{uuid.uuid4().hex[:6]}.jsonl"
    path.write_text("".join(dumps({"data": {"text": text_of(i)}}) + "\n" for i in range(N_ITEMS)))
    world.db.run(
        import_items, project, path, "jsonl", media=world.ctx.media, now=world.clock(), user_id=None
    )
    people = {
        role: world.user(role, role=role, workspace=ws)
        for role in ("manager", "reviewer", "annotator", "client")
    }
    ann = people["annotator"]
    while tasks := ann["client"].next(project.id, n=50):
        entries = [
            {"task": t["task"], "value": {"label": answer(t["data"]["text"])}} for t in tasks
        ]
        ann["client"].submit(project.id, entries)
    return {"project": world.load(project.id), **people}


def item_of(world: Any, project_id: int) -> dict[int, int]:
    """text number -> item id."""
    from sqlalchemy import text

    with world.db.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, data FROM items WHERE project_id = :p"), {"p": project_id}
        )
        return {int(r.data.rsplit(" ", 1)[1].rstrip('"}')): r.id for r in rows}


def test_planted_errors_are_found_reviewed_and_measured(world, worker, team):
    project, manager, reviewer = team["project"], team["manager"], team["reviewer"]
    base = f"/projects/{project.id}"
    train = manager["client"].request("POST", f"{base}/models/train", json=TRAIN)
    (trained,) = run_jobs(world, worker)
    assert trained.id == train["job"]["id"] and trained.state == "done", trained
    started = manager["client"].request("POST", f"{base}/label-errors/run", json={})
    assert started["job"]["kind"] == "label_errors"
    (job,) = run_jobs(world, worker)
    assert job.state == "done", job.to_dict()
    assert job.result["items"] == N_ITEMS and job.result["folds"] == 5
    items = item_of(world, project.id)
    planted = {items[n] for n in PLANTED}

    report = manager["client"].request("GET", f"{base}/label-errors")
    issues = {i["item_id"]: i for i in report["issues"]}
    assert planted <= set(issues), "every planted error is found"
    assert len(issues) <= len(planted) + 2, "and little else"
    assert report["precision"] is None and report["counts"]["open"] == len(issues)
    first = issues[items[PLANTED[0]]]
    right = truth(text_of(PLANTED[0]))
    assert first["suggested"] == right and first["label"] == answer(text_of(PLANTED[0]))
    assert first["reason"]["text"].startswith(f"model says {right} ")
    # one label per item: nothing fitted the annotator, confident learning scored the label
    assert first["reason"]["text"].endswith(f"; 1 annotator said {first['label']}")
    assert first["reason"]["n_annotators"] == 1 and first["reason"]["agreement"] == 1.0

    queue = reviewer["client"].request("GET", f"{base}/review")
    suspected = {e["item_id"]: e for e in queue["items"] if "label_error" in e["reasons"]}
    assert planted <= set(suspected) and queue["counts"]["label_error"] == len(issues)
    assert suspected[first["item_id"]]["label_error"]["text"] == first["reason"]["text"]
    shown = reviewer["client"].request("GET", f"{base}/review/{first['item_id']}")
    assert shown["label_issue"]["id"] == first["id"]

    # verdicts: a changed label confirms, a kept label rejects, "not an error" rejects
    a, b, c, d = (items[n] for n in PLANTED)
    decide = reviewer["client"].request
    decide("POST", f"{base}/review/{a}", json={"decision": "override", "value": {"label": right}})
    kept = reviewer["client"].request("GET", f"{base}/review/{b}")["annotations"][0]
    decide(
        "POST",
        f"{base}/review/{b}",
        json={"decision": "accept", "annotation_id": kept["annotation_id"]},
    )
    decide("POST", f"{base}/label-errors/{c}/dismiss", json={})
    with pytest.raises(LabelfarmAPIError) as twice:
        decide("POST", f"{base}/label-errors/{c}/dismiss", json={})
    assert twice.value.status == 404
    after = manager["client"].request("GET", f"{base}/label-errors")
    assert after["counts"]["confirmed"] == 1 and after["counts"]["rejected"] == 2
    assert after["precision"] == pytest.approx(1 / 3, abs=1e-6)
    confirmed = manager["client"].request(
        "GET", f"{base}/label-errors", params={"state": "confirmed"}
    )
    (one,) = confirmed["issues"]
    assert one["item_id"] == a and one["verdict_by"] == reviewer["id"] and one["review_id"]
    queue = reviewer["client"].request("GET", f"{base}/review")
    left = {e["item_id"] for e in queue["items"] if "label_error" in e["reasons"]}
    assert d in left and not {a, b, c} & left

    # a new run keeps the verdicts, and never suspects a label a reviewer kept again
    manager["client"].request("POST", f"{base}/label-errors/run", json={})
    (again,) = run_jobs(world, worker)
    assert again.state == "done", again.to_dict()
    final = manager["client"].request("GET", f"{base}/label-errors")
    assert final["counts"]["confirmed"] == 1 and final["counts"]["rejected"] == 2
    assert c not in {i["item_id"] for i in final["issues"]}
    seen = team["client"]["client"].request(
        "GET", f"{base}/label-errors", params={"state": "confirmed"}
    )
    assert seen["precision"] == after["precision"]
    assert [i["verdict_by"] for i in seen["issues"]] == [None], "clients see no identity"


def test_who_may_run_and_read(world, worker, team):
    project = team["project"]
    base = f"/projects/{project.id}"
    with pytest.raises(LabelfarmAPIError) as none:
        team["manager"]["client"].request("POST", f"{base}/label-errors/run", json={})
    assert none.value.status == 422 and "train a model version first" in str(none.value)
    for role in ("reviewer", "client", "annotator"):
        with pytest.raises(LabelfarmAPIError) as refused:
            team[role]["client"].request("POST", f"{base}/label-errors/run", json={})
        assert refused.value.status == 403
    with pytest.raises(LabelfarmAPIError) as read:
        team["annotator"]["client"].request("GET", f"{base}/label-errors")
    assert read.value.status == 403
    with pytest.raises(LabelfarmAPIError) as bad:
        team["manager"]["client"].request("POST", f"{base}/label-errors/run", json={"folds": 50})
    assert bad.value.status == 422
    with pytest.raises(LabelfarmAPIError) as state:
        team["manager"]["client"].request("GET", f"{base}/label-errors", params={"state": "x"})
    assert state.value.status == 422
