"""The queue's invariants: overlap, never twice, lease expiry, ordering, skips, held leases."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from labelfarm.client import LabelfarmAPIError
from labelfarm.jsonutil import dumps
from labelfarm.services.imports import import_items
from labelfarm.services.tasks import lease


def _ids(world, ann: dict, project_id: int, n: int = 1) -> list[int]:
    """The item ids behind the tasks ``next`` hands ``ann`` (annotators see handles)."""
    return world.item_ids(project_id, ann, ann["client"].next(project_id, n=n))


def _submit(world, ann: dict, project_id: int, item_ids: list[int], label: str = "a") -> list[dict]:
    return ann["client"].submit(
        project_id,
        [
            {
                "id": str(uuid.uuid4()),
                "task": world.handle(project_id, ann, i),
                "value": {"label": label},
            }
            for i in item_ids
        ],
    )


@pytest.fixture
def setup(world, tmp_path: Path):
    ws = world.workspace()
    people = [world.user(f"ann{i}", role="annotator", workspace=ws) for i in range(4)]
    return ws, people


def test_overlap_counts_live_leases_and_submissions(world, setup, tmp_path):
    ws, (a, b, c, _) = setup
    project = world.project(ws, overlap=2)
    world.add_items(project, 1, tmp_path)
    assert _ids(world, a, project.id) == [1]
    assert _ids(world, b, project.id) == [1]
    assert c["client"].next(project.id) == []  # two live leases fill the item
    _submit(world, a, project.id, [1])
    assert c["client"].next(project.id) == []  # one submission + one lease still fill it
    _submit(world, b, project.id, [1])
    assert c["client"].next(project.id) == []  # two submissions: done


def test_never_the_same_item_twice(world, setup, tmp_path):
    ws, (a, *_rest) = setup
    project = world.project(ws, overlap=3)
    world.add_items(project, 3, tmp_path)
    first = _ids(world, a, project.id, n=2)
    _submit(world, a, project.id, first)
    second = _ids(world, a, project.id, n=5)
    assert second == [3]
    _submit(world, a, project.id, second)
    assert a["client"].next(project.id, n=5) == []


def test_held_leases_come_back_first_and_are_not_doubled(world, setup, tmp_path):
    ws, (a, *_rest) = setup
    project = world.project(ws)
    world.add_items(project, 10, tmp_path)
    got = _ids(world, a, project.id, n=3)
    again = _ids(world, a, project.id, n=3)
    assert got == again == [1, 2, 3]
    more = _ids(world, a, project.id, n=5)
    assert more == [1, 2, 3, 4, 5]


def test_expired_lease_stops_counting(world, setup, tmp_path, clock):
    ws, (a, b, *_rest) = setup
    project = world.project(ws, overlap=1, lease_seconds=60)
    world.add_items(project, 1, tmp_path)
    assert _ids(world, a, project.id) == [1]
    assert b["client"].next(project.id) == []
    clock.advance(61)
    assert _ids(world, b, project.id) == [1]
    # a's lease expired: its own next does not hand the item back (never twice)
    assert a["client"].next(project.id) == []


def test_late_submissions_are_stored_and_marked(world, setup, tmp_path, clock):
    ws, (a, b, c, _) = setup
    project = world.project(ws, overlap=1, lease_seconds=60)
    world.add_items(project, 2, tmp_path)
    assert _ids(world, a, project.id) == [1]
    clock.advance(61)
    taken = _ids(world, b, project.id)  # reclaims a's lease
    assert len(taken) == 1
    late = _submit(world, a, project.id, [1])
    assert late[0]["status"] == "late" and late[0]["late_reason"] == "lease_expired"
    on_time = _submit(world, b, project.id, taken)
    assert on_time[0]["status"] == "accepted"
    other = 2 if taken == [1] else 1
    no_lease = _submit(world, c, project.id, [other])  # offline work without any lease
    assert no_lease[0]["status"] == "late" and no_lease[0]["late_reason"] == "no_lease"
    with world.db.begin("read") as conn:
        n = conn.execute(text("SELECT COUNT(*) FROM annotations")).scalar_one()
    assert n == 3
    # the item c worked on without a lease is never handed to c
    assert other not in _ids(world, c, project.id, n=5)


def test_replayed_batch_stores_once_and_answers_the_same(world, setup, tmp_path):
    ws, (a, *_rest) = setup
    project = world.project(ws)
    world.add_items(project, 3, tmp_path)
    items = _ids(world, a, project.id, n=3)
    batch = [
        {"id": f"cid-{i}", "task": world.handle(project.id, a, i), "value": {"label": "b"}}
        for i in items
    ]
    first = a["client"].submit(project.id, batch)
    second = a["client"].submit(project.id, batch)
    assert first == second
    with world.db.begin("read") as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM annotations")).scalar_one() == 3
        counts = conn.execute(text("SELECT n_submitted, n_leased FROM items")).all()
    assert all(tuple(r) == (1, 0) for r in counts)


def test_a_reused_client_id_answers_the_stored_row_and_keeps_the_other_lease(
    world, setup, tmp_path
):
    """A client that sends an id already used (for another item) gets the stored row back;
    nothing is written for the new item, whose lease stays open. On PostgreSQL this is the
    one-statement path (distinct leased items), whose insert skips the conflicting row."""
    ws, (a, *_rest) = setup
    project = world.project(ws)
    world.add_items(project, 3, tmp_path)
    first, second, third = _ids(world, a, project.id, n=3)
    stored = a["client"].submit(
        project.id,
        [{"id": "x", "task": world.handle(project.id, a, first), "value": {"label": "a"}}],
    )
    again = a["client"].submit(
        project.id,
        [
            {"id": "x", "task": world.handle(project.id, a, second), "value": {"label": "b"}},
            {"id": "y", "task": world.handle(project.id, a, third), "value": {"label": "c"}},
        ],
    )
    assert again[0] == stored[0]
    assert again[1]["status"] == "accepted" and again[1]["task"] == world.handle(
        project.id, a, third
    )
    with world.db.begin("read") as conn:
        state = dict(
            conn.execute(
                text("SELECT item_id, state FROM assignments WHERE item_id IN (:a, :b)"),
                {"a": second, "b": third},
            ).all()
        )
        counts = dict(conn.execute(text("SELECT id, n_leased FROM items")).all())
    assert state == {second: "leased", third: "submitted"}
    assert counts == {first: 0, second: 1, third: 0}


def test_one_late_entry_sends_the_batch_the_general_way(world, setup, tmp_path, clock):
    """A batch mixing a live lease and an expired one: each entry gets its own status."""
    ws, (a, *_rest) = setup
    project = world.project(ws, lease_seconds=60)
    world.add_items(project, 2, tmp_path)
    live, stale = _ids(world, a, project.id, n=2)
    with world.db.begin("write") as conn:
        conn.execute(
            text("UPDATE assignments SET expires_at = :t WHERE item_id = :i"),
            {"t": clock() - 1, "i": stale},
        )
    out = a["client"].submit(
        project.id,
        [
            {"id": "l", "task": world.handle(project.id, a, live), "value": {"label": "a"}},
            {"id": "s", "task": world.handle(project.id, a, stale), "value": {"label": "a"}},
        ],
    )
    assert [(r["status"], r["late_reason"]) for r in out] == [
        ("accepted", None),
        ("late", "lease_expired"),
    ]


def test_correction_is_a_new_row_pointing_at_the_old(world, setup, tmp_path):
    ws, (a, *_rest) = setup
    project = world.project(ws)
    world.add_items(project, 1, tmp_path)
    a["client"].next(project.id)
    first = _submit(world, a, project.id, [1], "a")[0]
    fix = a["client"].submit(
        project.id,
        [{"id": "fix-1", "task": world.handle(project.id, a, 1), "value": {"label": "c"}}],
    )[0]
    assert fix["status"] == "accepted" and fix["annotation_id"] != first["annotation_id"]
    with world.db.begin("read") as conn:
        rows = conn.execute(text("SELECT id, corrects_id FROM annotations ORDER BY id")).all()
        n_sub = conn.execute(text("SELECT n_submitted FROM items")).scalar_one()
    assert rows[1].corrects_id == rows[0].id
    assert n_sub == 1  # a correction does not count as another annotator


def test_invalid_batch_is_refused_whole_with_located_problems(world, setup, tmp_path):
    ws, (a, *_rest) = setup
    project = world.project(ws)
    world.add_items(project, 2, tmp_path)
    a["client"].next(project.id, n=2)
    with pytest.raises(LabelfarmAPIError) as err:
        a["client"].submit(
            project.id,
            [
                {"id": "ok", "task": world.handle(project.id, a, 1), "value": {"label": "a"}},
                {"id": "bad", "task": world.handle(project.id, a, 2), "value": {"label": "nope"}},
                {"id": "bad2", "task": world.handle(project.id, a, 999), "value": {"label": "a"}},
            ],
        )
    assert err.value.status == 422
    assert err.value.details[0]["index"] == 1 and err.value.details[0]["field"] == "value.label"
    with world.db.begin("read") as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM annotations")).scalar_one() == 0


def test_skip_frees_the_place_and_is_final_for_the_annotator(world, setup, tmp_path):
    ws, (a, b, *_rest) = setup
    project = world.project(ws, overlap=1)
    world.add_items(project, 1, tmp_path)
    a["client"].next(project.id)
    with pytest.raises(LabelfarmAPIError):
        a["client"].skip(project.id, world.handle(project.id, a, 1), "  ")
    assert (
        a["client"].skip(project.id, world.handle(project.id, a, 1), "image does not load")[
            "status"
        ]
        == "skipped"
    )
    assert a["client"].next(project.id) == []
    assert _ids(world, b, project.id) == [1]
    with world.db.begin("read") as conn:
        reason = conn.execute(text("SELECT skip_reason FROM assignments WHERE state='skipped'"))
        assert reason.scalar_one() == "image does not load"


def test_priority_ordering_with_deadlines(world, setup, tmp_path):
    ws, (a, *_rest) = setup
    project = world.project(ws, ordering="priority")
    rows = [
        {"data": {"text": "low"}, "priority": 0},
        {"data": {"text": "urgent-late"}, "priority": 5, "deadline": "2030-01-02T00:00:00Z"},
        {"data": {"text": "urgent-soon"}, "priority": 5, "deadline": "2030-01-01T00:00:00Z"},
        {"data": {"text": "urgent-none"}, "priority": 5},
        {"data": {"text": "mid"}, "priority": 1},
    ]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(dumps(r) + "\n" for r in rows))
    import_items(
        world.db, project, path, "jsonl", media=world.ctx.media, now=world.clock(), user_id=None
    )
    got = [t["data"]["text"] for t in a["client"].next(project.id, n=5)]
    assert got == ["urgent-soon", "urgent-late", "urgent-none", "mid", "low"]


def test_fifo_ordering(world, setup, tmp_path):
    ws, (a, *_rest) = setup
    project = world.project(ws)
    world.add_items(project, 4, tmp_path)
    assert [t["data"]["text"] for t in a["client"].next(project.id, n=4)] == [
        "item 0",
        "item 1",
        "item 2",
        "item 3",
    ]


def test_overlap_change_reopens_items(world, setup, tmp_path):
    ws, (a, b, *_rest) = setup
    manager = world.user("boss", role="manager", workspace=ws)
    project = world.project(ws, overlap=1)
    world.add_items(project, 1, tmp_path)
    a["client"].next(project.id)
    assert b["client"].next(project.id) == []
    manager["client"].update_project(project.id, overlap=2)
    assert _ids(world, b, project.id) == [1]


def test_reclaim_work_is_bounded(world, setup, tmp_path, clock):
    ws, people = setup
    project = world.project(ws, overlap=1, lease_seconds=10)
    world.add_items(project, lease.RECLAIM_BATCH + 50, tmp_path)
    people[0]["client"].next(project.id, n=50)
    with world.db.begin("write") as conn:
        for i in range(lease.RECLAIM_BATCH):  # many expired leases from a long-gone user
            conn.execute(
                text(
                    "INSERT INTO assignments (project_id, item_id, user_id, state, leased_at, "
                    "expires_at) VALUES (:p, :i, :u, 'leased', 0, 1)"
                ),
                {"p": project.id, "i": 51 + i, "u": people[3]["id"]},
            )
    clock.advance(20)
    assert world.db.run(lease.reclaim_expired, project, clock()) == lease.RECLAIM_BATCH
    assert world.db.run(lease.reclaim_expired, project, clock()) == 50
    assert world.db.run(lease.reclaim_expired, project, clock()) == 0


def test_correction_in_the_same_batch_points_at_the_earlier_entry(world, setup, tmp_path):
    ws, (a, *_rest) = setup
    project = world.project(ws)
    world.add_items(project, 1, tmp_path)
    a["client"].next(project.id)
    first, fix = a["client"].submit(
        project.id,
        [
            {"id": "w1", "task": world.handle(project.id, a, 1), "value": {"label": "a"}},
            {"id": "w2", "task": world.handle(project.id, a, 1), "value": {"label": "b"}},
        ],
    )
    assert first["status"] == fix["status"] == "accepted"
    with world.db.begin("read") as conn:
        corrects = conn.execute(
            text("SELECT corrects_id FROM annotations WHERE id = :i"), {"i": fix["annotation_id"]}
        ).scalar_one()
        n_sub = conn.execute(text("SELECT n_submitted FROM items")).scalar_one()
    assert corrects == first["annotation_id"] and n_sub == 1


def _set_scores(world, project_id: int, scores: dict[str, float]) -> None:
    """Scores by item text, as the score job writes them (services/scores.py)."""
    with world.db.begin("write") as conn:
        for item_text, score in scores.items():
            conn.execute(
                text(
                    "UPDATE items SET score = :s WHERE project_id = :p "
                    "AND data LIKE '%' || :t || '%'"
                ),
                {"s": score, "p": project_id, "t": f'"{item_text}"'},
            )


def test_score_ordering_keeps_overlap_held_leases_and_expiry(world, setup, tmp_path, clock):
    ws, (a, b, c, _) = setup
    project = world.project(ws, ordering="score", overlap=2, lease_seconds=60)
    world.add_items(project, 6, tmp_path)
    _set_scores(
        world, project.id,
        {"item 0": 0.1, "item 1": 0.9, "item 2": 0.5, "item 3": 0.9, "item 4": 0.0, "item 5": 0.7},
    )  # fmt: skip
    order = ["item 1", "item 3", "item 5", "item 2", "item 0", "item 4"]  # ties: by id
    texts = lambda tasks: [t["data"]["text"] for t in tasks]  # noqa: E731
    assert texts(a["client"].next(project.id, n=3)) == order[:3]
    assert texts(a["client"].next(project.id, n=4)) == order[:4]  # held first, not doubled
    assert texts(b["client"].next(project.id, n=2)) == order[:2]  # overlap 2
    assert texts(c["client"].next(project.id, n=2)) == order[2:4]  # 1 and 3 are full
    _submit(world, b, project.id, world.item_ids(project.id, b, b["client"].next(project.id)))
    clock.advance(61)  # every lease expires: the items take their places again
    # item 1 keeps b's submission (one place left); c never gets its items 5 and 2 again
    assert texts(c["client"].next(project.id, n=6)) == ["item 1", "item 3", "item 0", "item 4"]
