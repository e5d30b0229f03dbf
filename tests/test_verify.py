"""Verify mode's accepts: ``verified`` is stored only for a prediction accepted unchanged.

The claim comes from the annotate page; the server checks it against the prediction the task
shows (the item's newest) on both submit paths, and exports mark the verified annotations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from labelfarm.client import LabelfarmAPIError
from labelfarm.db.tables import predictions

PREDICTION = {"model": "m1", "value": {"label": "a"}, "score": 0.9}


@pytest.fixture
def setup(world: Any, tmp_path: Path) -> dict[str, Any]:
    ws = world.workspace()
    project = world.project(ws, overlap=1)
    world.add_items(project, 4, tmp_path, prediction=PREDICTION)
    world.add_items(project, 1, tmp_path)  # an item without a prediction
    return {
        "project": world.load(project.id),
        "ann": world.user("ann", role="annotator", workspace=ws),
        "manager": world.user("boss", role="manager", workspace=ws),
    }


def _stored(world: Any, project_id: int) -> dict[str, tuple[Any, bool, bool]]:
    """client id -> (value, from_prediction, verified) of the stored annotations."""
    with world.db.begin("read") as conn:
        rows = conn.execute(
            text(
                "SELECT client_id, value, from_prediction, verified FROM annotations "
                "WHERE project_id = :p"
            ),
            {"p": project_id},
        )
        return {r[0]: (orjson.loads(r[1]), bool(r[2]), bool(r[3])) for r in rows}


def test_only_an_unchanged_prediction_is_stored_as_verified(
    world: Any, setup: dict[str, Any]
) -> None:
    project, ann = setup["project"], setup["ann"]
    tasks = ann["client"].next(project.id, n=5)
    predicted = [t for t in tasks if t["prediction"]]
    plain = [t for t in tasks if not t["prediction"]]
    assert len(predicted) == 4 and len(plain) == 1
    assert predicted[0]["prediction"]["value"] == {"label": "a"}
    newer = world.item_ids(project.id, ann, [predicted[3]])[0]
    with world.db.begin("write") as conn:  # a newer prediction of one item, after its lease
        conn.execute(
            predictions.insert().values(
                project_id=project.id, item_id=newer, model="m2", value='{"label": "c"}',
                score=0.5, created_at=world.clock(),
            )
        )  # fmt: skip

    def entry(cid: str, task: dict[str, Any], label: str, **extra: Any) -> dict[str, Any]:
        return {"id": cid, "task": task["task"], "value": {"label": label}, **extra}

    ann["client"].submit(
        project.id,
        [
            entry("accept", predicted[0], "a", verified=True, from_prediction=True),
            entry("changed", predicted[1], "b", verified=True, from_prediction=True),
            entry("unclaimed", predicted[2], "a", from_prediction=True),
            entry("stale", predicted[3], "a", verified=True, from_prediction=True),
            entry("no-prediction", plain[0], "a", verified=True),
        ],
    )
    stored = _stored(world, project.id)
    assert {cid: row[2] for cid, row in stored.items()} == {
        "accept": True,
        "changed": False,
        "unclaimed": False,
        "stale": False,  # the newest prediction of its item says "c"
        "no-prediction": False,
    }
    assert stored["accept"] == ({"label": "a"}, True, True)

    # a replay answers the same and stores nothing new
    again = ann["client"].submit(
        project.id, [entry("accept", predicted[0], "a", verified=True, from_prediction=True)]
    )
    assert again[0]["status"] == "accepted"
    assert len(_stored(world, project.id)) == 5


def test_a_verified_accept_after_the_lease_is_checked_too(
    world: Any, setup: dict[str, Any]
) -> None:
    """Offline work (no live lease) takes the general path on both databases."""
    project, ann = setup["project"], setup["ann"]
    tasks = [t for t in ann["client"].next(project.id, n=5) if t["prediction"]]
    world.clock.advance(project.lease_seconds + 60)
    results = ann["client"].submit(
        project.id,
        [{"id": "late", "task": tasks[0]["task"], "value": {"label": "a"}, "verified": True}],
    )
    assert results[0]["status"] == "late"
    assert _stored(world, project.id)["late"][2] is True


def test_verified_must_be_a_boolean(world: Any, setup: dict[str, Any]) -> None:
    project, ann = setup["project"], setup["ann"]
    task = ann["client"].next(project.id, n=1)[0]
    with pytest.raises(LabelfarmAPIError) as err:
        ann["client"].submit(
            project.id, [{"task": task["task"], "value": {"label": "a"}, "verified": "yes"}]
        )
    assert err.value.status == 422
    assert err.value.details[0]["field"] == "verified"


def test_exports_mark_verified_annotations(world: Any, setup: dict[str, Any]) -> None:
    project, ann = setup["project"], setup["ann"]
    tasks = [t for t in ann["client"].next(project.id, n=5) if t["prediction"]]
    ann["client"].submit(
        project.id,
        [
            {"id": "yes", "task": tasks[0]["task"], "value": {"label": "a"}, "verified": True},
            {"id": "no", "task": tasks[1]["task"], "value": {"label": "b"}},
        ],
    )
    body = b"".join(setup["manager"]["client"].export_stream(project.id, format="jsonl"))
    anns = [a for line in body.splitlines() for a in orjson.loads(line)["annotations"]]
    assert len(anns) == 2
    marks = sorted((a["value"]["label"], a.get("verified")) for a in anns)
    assert marks == [("a", True), ("b", None)]


def test_accepting_a_gold_tasks_wrong_prefill_is_not_verified(world: Any, tmp_path: Path) -> None:
    """On gold, the pre-fill shown may be deliberately wrong: accepting it confirms no
    prediction of the model's, so it is stored unverified (and fails the gold item)."""
    ws = world.workspace()
    project = world.project(ws, overlap=1, gold_rate=1.0, wrong_prefill_share=1.0)
    world.add_items(project, 2, tmp_path, prediction=PREDICTION, gold={"label": "a"})
    project = world.load(project.id)
    ann = world.user("ann", role="annotator", workspace=ws)
    tasks = ann["client"].next(project.id, n=2)
    shown = [t["prediction"]["value"] for t in tasks]
    assert len(tasks) == 2 and {"label": "a"} not in shown  # every gold pre-fill disguised
    ann["client"].submit(
        project.id,
        [
            {"id": f"g{i}", "task": t["task"], "value": v, "verified": True}
            for i, (t, v) in enumerate(zip(tasks, shown, strict=True))
        ],
    )
    assert [row[2] for row in _stored(world, project.id).values()] == [False, False]
