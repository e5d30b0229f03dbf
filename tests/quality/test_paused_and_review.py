"""Work from paused or failed annotators is kept but left out of labels, a manager can send an
annotator's labels back for relabelling, and a review decision closes its item.

Annotators work through the services (which name items by id); managers, reviewers and
clients through the API.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from labelfarm.services import audit, exports, review
from labelfarm.services.aggregation import label_items
from labelfarm.services.tasks import entries, lease, submit

SCHEMA = {"fields": [{"name": "label", "type": "choice", "options": ["a", "b", "c"]}]}


def _next(world, project, user, n: int = 10) -> list[int]:
    tasks = world.db.run(lease.next_tasks, world.load(project.id), user["id"], n, world.clock())
    return [t["item_id"] for t in tasks]


def _submit(world, project, user, answers: dict[int, str]) -> list[dict[str, Any]]:
    current = world.load(project.id)
    batch = entries.validate_batch(
        current,
        [{"id": uuid.uuid4().hex, "item_id": i, "value": {"label": v}} for i, v in answers.items()],
    )
    return world.db.run(submit.submit, current, user["id"], batch, world.clock())


def _labels(world, project) -> dict[int, dict[str, Any]]:
    with world.db.begin("read") as tx:
        return label_items(tx, world.load(project.id), [1, 2, 3, 4, 5, 6])


def _items(world) -> dict[int, tuple[bool, int, int]]:
    """item id -> (is_open, n_leased, n_submitted)."""
    with world.db.begin("read") as conn:
        rows = conn.execute(text("SELECT id, is_open, n_leased, n_submitted FROM items"))
        return {r.id: (bool(r.is_open), int(r.n_leased), int(r.n_submitted)) for r in rows}


def _counted_annotators(world) -> dict[int, int]:
    """item id -> annotators whose work counts: what n_submitted must equal."""
    with world.db.begin("read") as conn:
        rows = conn.execute(
            text(
                "SELECT item_id, COUNT(DISTINCT user_id) FROM annotations "
                "WHERE excluded IS NULL AND status <> 'imported' GROUP BY item_id"
            )
        )
        return {int(i): int(n) for i, n in rows}


def _pause(team, project, who: dict, reason: str = "spot check") -> None:
    team["manager"]["client"].request(
        "PUT",
        f"/projects/{project.id}/annotators/{who['id']}",
        json={"state": "paused", "reason": reason},
    )


# -- paused and failed annotators ---------------------------------------------------------------
@pytest.mark.parametrize("state", ["paused", "failed"])
def test_work_of_a_paused_or_failed_annotator_is_kept_but_left_out_of_labels(
    world, team, tmp_path: Path, state
):
    project = world.project(team["ws"], schema=SCHEMA, overlap=2)
    world.add_items(project, 3, tmp_path)
    good, late = team["ann-a"], team["ann-b"]
    assert _next(world, project, good) == [1, 2, 3]
    assert _next(world, project, late) == [1, 2, 3]  # leases taken before the pause
    if state == "paused":
        _pause(team, project, late)
    else:
        with world.db.begin("write") as conn:
            conn.execute(
                text(
                    "INSERT INTO annotator_status (project_id, user_id, state, reason, evidence, "
                    "updated_at) VALUES (:p, :u, 'failed', 'qualification', '{}', 0)"
                ),
                {"p": project.id, "u": late["id"]},
            )
    stored = _submit(world, project, late, {1: "b", 2: "b", 3: "b"})
    assert [r["excluded"] for r in stored] == [state] * 3  # stored, and told why it won't count
    _submit(world, project, good, {1: "a", 2: "a", 3: "a"})

    with world.db.begin("read") as conn:
        kept = conn.execute(
            text("SELECT COUNT(*) FROM annotations WHERE user_id = :u AND excluded = :s"),
            {"u": late["id"], "s": state},
        ).scalar_one()
    assert kept == 3  # on record
    labels = _labels(world, project)
    assert {i: (lb["value"], lb["n_annotators"]) for i, lb in labels.items()} == {
        i: ({"label": "a"}, 1) for i in (1, 2, 3)
    }
    # the items still need their second label: open for someone else
    assert _items(world) == {i: (True, 0, 1) for i in (1, 2, 3)}
    assert _counted_annotators(world) == {1: 1, 2: 1, 3: 1}
    assert _next(world, project, team["ann-c"]) == [1, 2, 3]
    # the review queue sees no disagreement, the quality report no excluded label
    queue = world.db.run(review.review_queue, world.load(project.id))
    assert queue["counts"]["disagreement"] == 0
    report = team["manager"]["client"].request("GET", f"/projects/{project.id}/quality")
    assert report["n_annotations"] == 3
    # exports carry neither the label nor the annotation
    rows = list(exports.records(world.db, world.load(project.id)))
    assert [[a["annotator"] for a in r.annotations] for r in rows] == [[good["pseudonym"]]] * 3
    assert all(r.label["value"] == {"label": "a"} for r in rows)
    # and the reviewer sees it, marked
    item = team["reviewer"]["client"].request("GET", f"/projects/{project.id}/review/1")
    assert sorted((a["annotator"], a["excluded"]) for a in item["annotations"]) == sorted(
        [(good["pseudonym"], None), (late["pseudonym"], state)]
    )


def test_a_resumed_annotators_correction_counts_once(world, team, tmp_path: Path):
    project = world.project(team["ws"], schema=SCHEMA, overlap=2)
    world.add_items(project, 1, tmp_path)
    who = team["ann-b"]
    assert _next(world, project, who) == [1]
    _pause(team, project, who)
    _submit(world, project, who, {1: "b"})
    assert _items(world)[1] == (True, 0, 0)
    team["manager"]["client"].request(
        "PUT", f"/projects/{project.id}/annotators/{who['id']}", json={"state": "active"}
    )
    _submit(world, project, who, {1: "c"})  # a correction, now counted
    _submit(world, project, who, {1: "a"})  # and another: still one annotator
    assert _items(world)[1] == (True, 0, 1)
    assert _labels(world, project)[1]["value"] == {"label": "a"}


def test_adaptive_overlap_ignores_excluded_labels(world, team, tmp_path: Path):
    project = world.project(
        team["ws"], schema=SCHEMA, overlap=1, max_overlap=3, target_confidence=0.9
    )
    world.add_items(project, 1, tmp_path)
    first, paused, third = team["ann-a"], team["ann-b"], team["ann-c"]
    assert _next(world, project, first) == [1]
    _submit(world, project, first, {1: "a"})
    assert _next(world, project, paused) == [1]  # one label is not sure enough
    _pause(team, project, paused)
    _submit(world, project, paused, {1: "a"})  # would make two agreeing labels
    with world.db.begin("read") as conn:
        conf = conn.execute(text("SELECT label_confidence FROM items")).scalar_one()
    assert conf < 0.9
    assert _next(world, project, third) == [1]  # still open: the paused label did not count


# -- relabelling -----------------------------------------------------------------------------------
@pytest.fixture
def labelled_twice(world, team, tmp_path: Path):
    """Four items, overlap 1: ann-a labels items 1-2, then (100 s later) 3-4; item 4 is also
    corrected."""
    project = world.project(team["ws"], schema=SCHEMA, overlap=1)
    world.add_items(project, 4, tmp_path)
    who = team["ann-a"]
    assert _next(world, project, who, 2) == [1, 2]
    _submit(world, project, who, {1: "a", 2: "a"})
    world.clock.advance(100)
    assert _next(world, project, who, 2) == [3, 4]
    _submit(world, project, who, {3: "b", 4: "b"})
    _submit(world, project, who, {4: "c"})
    assert _items(world) == {i: (False, 0, 1) for i in (1, 2, 3, 4)}
    return project


def test_a_manager_sends_labels_since_a_time_back_for_relabelling(
    world, team, labelled_twice, clock
):
    project, who = labelled_twice, team["ann-a"]
    since = clock() - 50
    from datetime import UTC, datetime

    iso = datetime.fromtimestamp(since, UTC).isoformat()
    done = team["manager"]["client"].request(
        "POST",
        f"/projects/{project.id}/annotators/{who['id']}/relabel",
        json={"since": iso, "reason": "careless after lunch"},
    )
    assert done == {
        "project_id": project.id,
        "user_id": who["id"],
        "since": done["since"],
        "items": 2,
        "annotations_excluded": 3,  # item 4's correction too
        "items_open": 2,
    }
    assert _items(world) == {1: (False, 0, 1), 2: (False, 0, 1), 3: (True, 0, 0), 4: (True, 0, 0)}
    assert _counted_annotators(world) == {1: 1, 2: 1}
    assert sorted(_labels(world, project)) == [1, 2]  # 3 and 4 have no label now
    assert _next(world, project, who) == []  # never handed back to the same annotator
    assert _next(world, project, team["ann-b"]) == [3, 4]
    entry = next(
        e
        for e in world.db.run(audit.entries, workspace_id=team["ws"]["id"])
        if e["action"] == "annotator.relabel"
    )
    assert entry["actor_id"] == team["manager"]["id"]
    assert entry["details"]["reason"] == "careless after lunch"
    assert entry["details"]["items"] == 2


def test_relabelling_everything_and_the_rules_around_it(world, team, labelled_twice):
    project, who = labelled_twice, team["ann-a"]
    manager = team["manager"]["client"]
    path = f"/projects/{project.id}/annotators/{who['id']}/relabel"
    from labelfarm.client import LabelfarmAPIError

    for client in (team["reviewer"]["client"], team["client"]["client"], who["client"]):
        with pytest.raises(LabelfarmAPIError) as err:
            client.request("POST", path, json={})
        assert err.value.status == 403
    with pytest.raises(LabelfarmAPIError) as err:  # nobody who worked here
        manager.request(
            "POST", f"/projects/{project.id}/annotators/{team['ann-c']['id']}/relabel", json={}
        )
    assert err.value.status == 404
    done = manager.request("POST", path, json={})
    assert (done["items"], done["annotations_excluded"], done["items_open"]) == (4, 5, 4)
    assert _items(world) == {i: (True, 0, 0) for i in (1, 2, 3, 4)}
    again = manager.request("POST", path, json={})  # nothing left to send back
    assert (again["items"], again["annotations_excluded"]) == (0, 0)
    assert _items(world) == {i: (True, 0, 0) for i in (1, 2, 3, 4)}


def test_relabelling_leaves_a_reviewed_item_closed(world, team, labelled_twice):
    project, who = labelled_twice, team["ann-a"]
    team["reviewer"]["client"].request(
        "POST",
        f"/projects/{project.id}/review/3",
        json={"decision": "override", "value": {"label": "a"}},
    )
    team["manager"]["client"].request(
        "POST", f"/projects/{project.id}/annotators/{who['id']}/relabel", json={}
    )
    assert _items(world)[3] == (False, 0, 0)
    assert _labels(world, project)[3]["method"] == "review"
    assert _next(world, project, team["ann-b"]) == [1, 2, 4]


# -- a review decision closes the item -------------------------------------------------------------
def test_a_review_decision_closes_the_item_under_adaptive_overlap(world, team, tmp_path: Path):
    project = world.project(
        team["ws"], schema=SCHEMA, overlap=1, max_overlap=4, target_confidence=0.95
    )
    world.add_items(project, 2, tmp_path)
    a, b, c = team["ann-a"], team["ann-b"], team["ann-c"]
    assert _next(world, project, a, 1) == [1]
    _submit(world, project, a, {1: "a"})
    assert _next(world, project, b, 1) == [1]  # unsure: a second label is asked for
    _submit(world, project, b, {1: "b"})
    queue = world.db.run(review.review_queue, world.load(project.id))
    assert [e["item_id"] for e in queue["items"]] == [1]
    world.clock.advance(10)
    team["reviewer"]["client"].request(
        "POST",
        f"/projects/{project.id}/review/1",
        json={"decision": "override", "value": {"label": "b"}},
    )
    assert _items(world)[1][0] is False
    assert _next(world, project, c, 1) == [2]  # item 1 is not handed out again
    # a settings change recomputes openness: the reviewed item stays closed
    team["manager"]["client"].request("PATCH", f"/projects/{project.id}", json={"max_overlap": 5})
    assert _items(world)[1][0] is False
    # the queue stays clear of it, and the label stays the decision
    queue = world.db.run(review.review_queue, world.load(project.id))
    assert 1 not in [e["item_id"] for e in queue["items"]]
    label = _labels(world, project)[1]
    assert (label["value"], label["method"], label["item_confidence"]) == (
        {"label": "b"},
        "review",
        1.0,
    )


def test_work_in_flight_at_the_decision_reopens_nothing(world, team, tmp_path: Path):
    project = world.project(team["ws"], schema=SCHEMA, overlap=2)
    world.add_items(project, 1, tmp_path)
    a, b = team["ann-a"], team["ann-b"]
    assert _next(world, project, a) == [1]
    assert _next(world, project, b) == [1]
    _submit(world, project, a, {1: "a"})
    world.clock.advance(5)
    team["reviewer"]["client"].request(
        "POST",
        f"/projects/{project.id}/review/1",
        json={"decision": "override", "value": {"label": "c"}},
    )
    world.clock.advance(5)
    _submit(world, project, b, {1: "b"})  # the lease was live: stored and counted
    assert _items(world)[1] == (False, 0, 2)
    queue = world.db.run(review.review_queue, world.load(project.id))
    assert queue["total"] == 0  # a disagreement after the decision does not bring it back
    assert _labels(world, project)[1]["value"] == {"label": "c"}


def test_a_gold_item_comes_back_to_the_queue_on_a_new_failure(
    world, team, tmp_path: Path, make_gold, gold_result
):
    project = world.project(team["ws"], schema=SCHEMA, overlap=1)
    world.add_items(project, 1, tmp_path)
    a = team["ann-a"]
    assert _next(world, project, a) == [1]
    _submit(world, project, a, {1: "b"})
    make_gold(1, {"label": "a"})
    gold_result(project.id, 1, a["id"], 0.0, gold_class="a")
    reviewer = team["reviewer"]["client"]
    world.clock.advance(5)
    reviewer.request(
        "POST",
        f"/projects/{project.id}/review/1",
        json={"decision": "accept", "annotation_id": 1, "note": "gold checked"},
    )
    assert reviewer.request("GET", f"/projects/{project.id}/review")["total"] == 0
    world.clock.advance(5)
    gold_result(project.id, 1, a["id"], 0.0, gold_class="a")
    queue = reviewer.request("GET", f"/projects/{project.id}/review")
    assert [(e["item_id"], e["reasons"]) for e in queue["items"]] == [(1, ["gold_failure"])]


def test_an_export_leaves_out_work_sent_back(world, team, tmp_path: Path):
    project = world.project(team["ws"], schema=SCHEMA, overlap=1)
    world.add_items(project, 2, tmp_path)
    who = team["ann-a"]
    assert _next(world, project, who) == [1, 2]
    _submit(world, project, who, {1: "a", 2: "b"})
    manager = team["manager"]["client"]
    manager.request("POST", f"/projects/{project.id}/annotators/{who['id']}/relabel", json={})
    lines = b"".join(manager.export_stream(project.id, format="jsonl")).splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    assert len(records) == 2
    assert all(not r.get("annotations") and not r.get("label") for r in records), records
