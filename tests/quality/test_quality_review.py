"""The review flow through the API: queue, one item side by side, decisions, export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from labelfarm.client import LabelfarmAPIError


@pytest.fixture
def disputed(world, team, tmp_path: Path, label_all):
    """Item 1: a / b (a disagreement); item 2: a / a; item 3: gold, answered wrongly."""
    project = world.project(team["ws"], overlap=2)
    world.add_items(project, 3, tmp_path)
    label_all(team["ann-a"]["client"], project.id, {1: "a", 2: "a", 3: "c"})
    label_all(team["ann-b"]["client"], project.id, {1: "b", 2: "a", 3: "b"})
    return project


def test_queue_item_decision_and_export(world, team, disputed, make_gold, gold_result):
    make_gold(3, {"label": "b"})
    gold_result(disputed.id, 3, team["ann-a"]["id"], 0.0, gold_class="b")
    reviewer = team["reviewer"]["client"]
    team["manager"]["client"].request("POST", f"/projects/{disputed.id}/quality/refit")
    queue = reviewer.request("GET", f"/projects/{disputed.id}/review")
    assert [(e["item_id"], e["reasons"]) for e in queue["items"]] == [
        (3, ["gold_failure"]),
        (1, ["low_confidence", "disagreement"]),
    ]
    assert queue["counts"] == {"gold_failure": 1, "low_confidence": 1, "disagreement": 1}
    assert 0.3 < queue["items"][1]["confidence"] < queue["target_confidence"]

    item = reviewer.request("GET", f"/projects/{disputed.id}/review/1")
    assert [a["value"] for a in item["annotations"]] == [{"label": "a"}, {"label": "b"}]
    assert all(a["annotator"].startswith("a-") for a in item["annotations"])
    assert item["label"]["method"] == "dawid-skene" and item["reviews"] == []
    gold_item = reviewer.request("GET", f"/projects/{disputed.id}/review/3")
    assert gold_item["item"]["gold"] == {"label": "b"}
    assert [a["gold_score"] for a in gold_item["annotations"]] == [0.0, 1.0]

    with pytest.raises(LabelfarmAPIError) as err:  # the final answer is checked by the schema
        reviewer.request(
            "POST",
            f"/projects/{disputed.id}/review/1",
            json={"decision": "override", "value": {"label": "zebra"}},
        )
    assert err.value.status == 422 and err.value.details[0]["field"] == "value.label"
    other = gold_item["annotations"][0]["annotation_id"]
    with pytest.raises(LabelfarmAPIError) as err:  # an annotation of another item
        reviewer.request(
            "POST",
            f"/projects/{disputed.id}/review/1",
            json={"decision": "accept", "annotation_id": other},
        )
    assert err.value.status == 422

    second = item["annotations"][1]["annotation_id"]
    world.clock.advance(5)
    decided = reviewer.request(
        "POST",
        f"/projects/{disputed.id}/review/1",
        json={"decision": "accept", "annotation_id": second, "note": "b: the collar"},
    )
    assert decided["label"]["value"] == {"label": "b"}
    assert decided["label"]["method"] == "review"
    world.clock.advance(5)
    reviewer.request(
        "POST",
        f"/projects/{disputed.id}/review/1",
        json={"decision": "override", "value": {"label": "c"}},
    )
    again = reviewer.request("GET", f"/projects/{disputed.id}/review/1")
    assert [(r["decision"], r["value"]) for r in again["reviews"]] == [
        ("accept", {"label": "b"}),
        ("override", {"label": "c"}),
    ]
    assert again["label"]["value"] == {"label": "c"}  # the newest decision wins
    queue = reviewer.request("GET", f"/projects/{disputed.id}/review")
    assert [e["item_id"] for e in queue["items"]] == [3]

    with world.db.begin("read") as conn:
        actions = conn.execute(
            text("SELECT action, actor_id, target FROM audit_log WHERE action = 'review.decide'")
        ).all()
    assert [(a.actor_id, a.target) for a in actions] == [(team["reviewer"]["id"], "item:1")] * 2

    lines = [
        json.loads(x)
        for x in b"".join(team["manager"]["client"].export_stream(disputed.id)).splitlines()
    ]
    labels = {rec["id"]: rec["label"] for rec in lines}
    assert labels[1]["method"] == "review" and labels[1]["value"] == {"label": "c"}
    assert labels[2]["method"] == "dawid-skene" and labels[2]["value"] == {"label": "a"}
    assert labels[3]["method"] == "gold"


def test_work_after_a_decision_leaves_the_item_closed(world, team, disputed, label_all):
    """A review decision closes its item: a later correction is stored, but neither hands
    the item out again nor brings it back to the queue."""
    reviewer = team["reviewer"]["client"]
    reviewer.request(
        "POST",
        f"/projects/{disputed.id}/review/1",
        json={"decision": "override", "value": {"label": "a"}},
    )
    assert 1 not in [
        e["item_id"] for e in reviewer.request("GET", f"/projects/{disputed.id}/review")["items"]
    ]
    world.clock.advance(60)
    team["ann-a"]["client"].submit(
        disputed.id,
        [
            {
                "id": "fix-1",
                "task": world.handle(disputed.id, team["ann-a"], 1),
                "value": {"label": "c"},
            }
        ],
    )  # a correction, later
    assert 1 not in [
        e["item_id"] for e in reviewer.request("GET", f"/projects/{disputed.id}/review")["items"]
    ]
    item = reviewer.request("GET", f"/projects/{disputed.id}/review/1")
    assert {"label": "c"} in [a["value"] for a in item["annotations"]]  # kept
    assert item["label"]["value"] == {"label": "a"} and item["label"]["method"] == "review"


@pytest.mark.parametrize("role", ["ann-a", "client"])
def test_annotators_and_clients_may_not_review(world, team, disputed, role):
    caller = team[role]["client"]
    for method, path, body in (
        ("GET", f"/projects/{disputed.id}/review", None),
        ("GET", f"/projects/{disputed.id}/review/1", None),
        (
            "POST",
            f"/projects/{disputed.id}/review/1",
            {"decision": "override", "value": {"label": "a"}},
        ),
    ):
        with pytest.raises(LabelfarmAPIError) as err:
            caller.request(method, path, json=body)
        assert err.value.status == 403
    with world.db.begin("read") as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM reviews")).scalar_one() == 0
