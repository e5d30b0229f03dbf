"""No annotator can hoard a project: live leases are capped per annotator (``next`` and
offline checkout together), checkouts are capped in hours, and a manager can release an
annotator's leases, the items reopening at once."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from labelfarm.client import LabelfarmAPIError
from labelfarm.errors import InvalidInput
from labelfarm.services import audit
from labelfarm.services.tasks import checkout, lease, release


def _live(world: Any, project_id: int, user_id: int) -> int:
    with world.db.begin("read") as conn:
        return int(
            conn.execute(
                text(
                    "SELECT COUNT(*) FROM assignments WHERE project_id = :p AND user_id = :u "
                    "AND state = 'leased' AND expires_at > :now"
                ),
                {"p": project_id, "u": user_id, "now": world.clock()},
            ).scalar_one()
        )


def _counters_agree(world: Any, project_id: int) -> None:
    """Every item's n_leased is its number of leased assignments, n_submitted its number of
    submitted ones, and is_open follows from them (overlap as set)."""
    with world.db.begin("read") as conn:
        rows = conn.execute(
            text(
                "SELECT i.id, i.n_leased, i.n_submitted, i.is_open, p.overlap, "
                "(SELECT COUNT(*) FROM assignments a WHERE a.item_id = i.id "
                " AND a.state = 'leased') AS leased, "
                "(SELECT COUNT(*) FROM assignments a WHERE a.item_id = i.id "
                " AND a.state = 'submitted') AS submitted "
                "FROM items i JOIN projects p ON p.id = i.project_id WHERE i.project_id = :p"
            ),
            {"p": project_id},
        ).all()
    for r in rows:
        assert (r.n_leased, r.n_submitted) == (r.leased, r.submitted), r
        assert bool(r.is_open) == (r.leased + r.submitted < r.overlap), r


@pytest.fixture
def team(world: Any) -> dict[str, Any]:
    ws = world.workspace()
    return {
        "ws": ws,
        "ann": world.user("ann", role="annotator", workspace=ws),
        "bob": world.user("bob", role="annotator", workspace=ws),
        "boss": world.user("boss", role="manager", workspace=ws),
    }


def test_next_and_two_day_long_checkouts_hold_no_more_than_the_cap(
    world: Any, team: dict[str, Any], tmp_path: Path
) -> None:
    """The review's case: next n=1000 and two 24-hour checkouts took 194 of 202 items."""
    project = world.project(team["ws"])  # the default cap
    world.add_items(project, 202, tmp_path)
    ann, now = team["ann"], world.clock()
    got = world.db.run(lease.next_tasks, project, ann["id"], 1000, now)
    assert len(got) == project.max_live_leases == 50
    for _ in range(2):
        out = ann["client"].request(
            "POST", f"/projects/{project.id}/checkout", json={"n": 50, "hours": 24}
        )
        handed = world.item_ids(project.id, ann, out["tasks"])
        assert sorted(handed) == sorted(t["item_id"] for t in got)
    assert _live(world, project.id, ann["id"]) == 50
    assert len(team["bob"]["client"].next(project.id, n=50)) == 50  # the rest is for others
    _counters_agree(world, project.id)


def test_next_gets_only_the_room_left(world: Any, team: dict[str, Any], tmp_path: Path) -> None:
    project = world.project(team["ws"], max_live_leases=5)
    world.add_items(project, 20, tmp_path)
    client = team["ann"]["client"]
    first = [t["task"] for t in client.next(project.id, n=3)]
    assert len(first) == 3
    second = [t["task"] for t in client.next(project.id, n=8)]
    assert second[:3] == first and len(second) == 5  # held ones first, then the room left
    assert [t["task"] for t in client.next(project.id, n=8)] == second  # no room: held only
    assert [t["task"] for t in client.next(project.id, n=2)] == second[:2]
    client.submit(
        project.id,
        [{"id": str(uuid.uuid4()), "task": i, "value": {"label": "a"}} for i in second[:2]],
    )
    third = [t["task"] for t in client.next(project.id, n=8)]
    assert third[:3] == second[2:] and len(third) == 5
    assert _live(world, project.id, team["ann"]["id"]) == 5
    _counters_agree(world, project.id)


def test_a_lowered_cap_leases_nothing_new_until_below_it(
    world: Any, team: dict[str, Any], tmp_path: Path
) -> None:
    project = world.project(team["ws"], max_live_leases=6)
    world.add_items(project, 20, tmp_path)
    client = team["ann"]["client"]
    held = [t["task"] for t in client.next(project.id, n=6)]
    team["boss"]["client"].update_project(project.id, max_live_leases=2)
    world.ctx.projects.clear()
    assert [t["task"] for t in client.next(project.id, n=10)] == held  # kept, none new
    assert [t["task"] for t in client.next(project.id, n=1)] == held[:1]
    assert _live(world, project.id, team["ann"]["id"]) == 6


def test_checkout_counts_against_the_cap_and_its_hours(
    world: Any, team: dict[str, Any], tmp_path: Path
) -> None:
    project = world.project(team["ws"], max_live_leases=10, max_checkout_hours=2)
    world.add_items(project, 30, tmp_path)
    client, path = team["ann"]["client"], f"/projects/{project.id}/checkout"
    held = [t["task"] for t in client.next(project.id, n=4)]
    out = client.request("POST", path, json={})  # the defaults, 50 tasks for 8 hours, capped
    tasks = out["tasks"]
    assert [t["task"] for t in tasks][:4] == held and len(tasks) == 10
    assert _live(world, project.id, team["ann"]["id"]) == 10
    with world.db.begin("read") as conn:
        expiries = set(
            conn.execute(
                text("SELECT expires_at FROM assignments WHERE user_id = :u AND project_id = :p"),
                {"u": team["ann"]["id"], "p": project.id},
            ).scalars()
        )
    assert expiries == {world.clock() + 2 * 3600}
    for body, field in (({"n": 11}, "n"), ({"n": 5, "hours": 3}, "hours")):
        with pytest.raises(LabelfarmAPIError) as refused:
            client.request("POST", path, json=body)
        assert refused.value.status == 422
        assert refused.value.details[0]["field"] == field
    assert len(team["bob"]["client"].next(project.id, n=50)) == 10  # bob's own cap
    with pytest.raises(InvalidInput):  # the service keeps the same bounds
        world.db.run(checkout.check_out, project, team["bob"]["id"], 11, world.clock())


@pytest.mark.parametrize("value", [0, 1001, 2.5])
def test_the_cap_is_a_checked_setting(world: Any, team: dict[str, Any], value: Any) -> None:
    project = world.project(team["ws"])
    boss = team["boss"]["client"]
    with pytest.raises(LabelfarmAPIError) as refused:
        boss.update_project(project.id, max_live_leases=value)
    assert refused.value.status == 422
    assert boss.update_project(project.id, max_live_leases=7)["max_live_leases"] == 7
    assert boss.project(project.id)["max_checkout_hours"] == 24


def test_a_manager_releases_an_annotators_leases(
    world: Any, team: dict[str, Any], tmp_path: Path
) -> None:
    project = world.project(team["ws"], overlap=2, max_live_leases=8)
    world.add_items(project, 8, tmp_path)
    ann, bob, boss = team["ann"], team["bob"], team["boss"]
    out = ann["client"].request("POST", f"/projects/{project.id}/checkout", json={"n": 8})
    mine = world.item_ids(project.id, ann, out["tasks"])
    assert len(mine) == 8
    bob_got = world.item_ids(project.id, bob, bob["client"].next(project.id, n=3))
    kept = world.handle(project.id, ann, mine[0])
    ann["client"].submit(project.id, [{"id": "kept", "task": kept, "value": {"label": "a"}}])
    with pytest.raises(LabelfarmAPIError) as refused:  # not an annotator's call
        ann["client"].release_leases(project.id, ann["id"])
    assert refused.value.status == 403

    assert boss["client"].release_leases(project.id, ann["id"]) == 7
    assert _live(world, project.id, ann["id"]) == 0
    _counters_agree(world, project.id)
    assert boss["client"].release_leases(project.id, ann["id"]) == 0
    # the items are open again: a third annotator gets the released ones
    carl = world.user("carl", role="annotator", workspace=team["ws"])
    got = world.item_ids(project.id, carl, carl["client"].next(project.id, n=8))
    # overlap 2: each has room for one more but the first, which ann submitted and bob holds
    assert bob_got == mine[:3]
    assert sorted(got) == sorted(mine[1:])
    # ann never gets them back; work she submits on one later is kept, marked late
    assert ann["client"].next(project.id, n=8) == []
    late = ann["client"].submit(
        project.id,
        [{"id": "late", "task": world.handle(project.id, ann, mine[1]), "value": {"label": "b"}}],
    )
    assert (late[0]["status"], late[0]["late_reason"]) == ("late", "lease_expired")
    _counters_agree(world, project.id)
    entries = world.db.run(audit.entries, workspace_id=team["ws"]["id"])
    released = [(e["actor_id"], e["details"]) for e in entries if e["action"] == "leases.release"]
    assert released[-1] == (boss["id"], {"project_id": project.id, "released": 7})


def test_release_is_refused_outside_the_workspace(
    world: Any, team: dict[str, Any], tmp_path: Path
) -> None:
    project = world.project(team["ws"])
    world.add_items(project, 3, tmp_path)
    team["ann"]["client"].next(project.id, n=3)
    other = world.workspace("other")
    stranger = world.user("stranger", role="manager", workspace=other)
    with pytest.raises(LabelfarmAPIError) as refused:
        stranger["client"].release_leases(project.id, team["ann"]["id"])
    assert refused.value.status == 404
    assert _live(world, project.id, team["ann"]["id"]) == 3
    assert world.db.run(
        release.release_leases, project, team["ann"]["id"], world.clock(), actor_id=None
    ) == {"released": 3}


@pytest.mark.parametrize("cap", [3, 5, 6, 9])
def test_the_one_statement_path_keeps_the_cap_as_the_general_path(
    db_url: str, request: pytest.FixtureRequest, tmp_path: Path, cap: int
) -> None:
    """PostgreSQL's one-statement ``next`` stores what the general path stores under a cap
    (in this history the caller holds 3 live leases and 2 expired ones)."""
    if not db_url.startswith("postgresql"):
        pytest.skip("the one-statement fast path exists only on PostgreSQL")
    from test_fast_paths import (  # type: ignore[import-not-found]
        LEASE_SECONDS,
        Twins,
        _item_rows,
        _run_lease,
        assert_same,
        lease_history,
    )

    world = request.getfixturevalue("world")
    twins = Twins(world, tmp_path, _item_rows(14), lease_seconds=LEASE_SECONDS, max_live_leases=cap)
    lease_history(twins, expire=True)
    fast_tasks, general_tasks = _run_lease(twins, 10)
    assert_same(
        (fast_tasks, general_tasks, "the tasks returned"),
        (*twins.states(), "the stored rows"),
    )
    caller = twins.fast.users["caller"]
    assert len(fast_tasks) == _live(world, twins.fast.project.id, caller) == max(cap, 3)


@pytest.mark.parametrize("path", ["one statement", "general"])
def test_parallel_calls_of_one_annotator_keep_the_cap(
    db_url: str, world: Any, team: dict[str, Any], tmp_path: Path, path: str
) -> None:
    """A burst of parallel ``next`` calls by one annotator (each on its own connection)
    leases no more than the cap in all: the later calls count the earlier ones' leases."""
    import random
    import threading
    from concurrent.futures import ThreadPoolExecutor

    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite's single writer runs the calls one at a time")
    project = world.project(team["ws"], max_live_leases=5)
    world.add_items(project, 60, tmp_path)
    user_id, calls = team["ann"]["id"], 12
    start = threading.Barrier(calls)

    def call(_: int) -> int:
        start.wait()
        now = world.clock()
        if path == "general":
            with world.db.begin("lease") as tx, tx.transaction():
                tasks, _standing = lease.lease(tx, project, user_id, 5, now, random.Random(0))
        else:
            with world.db.begin("lease") as tx:
                tasks = lease.lease_in_one_statement(tx, project, user_id, 5, now)
        return len(tasks)

    for _ in range(3):
        with ThreadPoolExecutor(calls) as pool:
            got = list(pool.map(call, range(calls)))
        assert max(got) == 5
        assert _live(world, project.id, user_id) == 5
    _counters_agree(world, project.id)
