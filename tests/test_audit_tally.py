"""Events audited in aggregate: one row per key and bucket, in one transaction, with bounded
memory; the server writes them every bucket and at shutdown."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from labelfarm.jsonutil import loads
from labelfarm.services import audit
from labelfarm.services.audit_tally import AuditTally
from labelfarm.web.background import lifespan

T = 1_800_000_000.0  # a bucket boundary of 60 s


def _rows(world, after: int = 0) -> list[tuple[str, str, int | None, int | None, dict]]:
    with world.db.begin("read") as conn:
        rows = conn.execute(
            text(
                "SELECT action, target, workspace_id, actor_id, details FROM audit_log "
                "WHERE id > :n ORDER BY id"
            ),
            {"n": after},
        ).all()
    return [(r.action, r.target, r.workspace_id, r.actor_id, loads(r.details)) for r in rows]


def _last_id(world) -> int:
    with world.db.begin("read") as conn:
        return conn.execute(text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar_one()


def test_n_events_become_one_row_with_their_count(world):
    start = _last_id(world)
    tally = AuditTally(bucket_seconds=60)
    for i in range(500):
        tally.add("login.failed", "address:203.0.113.5", now=T + 1 + i * 0.1)
    tally.add("login.failed", "address:192.0.2.1", now=T + 2)
    assert tally.flush(world.db, T + 59) == 0  # the bucket is still open
    assert tally.flush(world.db, T + 60) == 2
    rows = _rows(world, start)
    assert [(a, t) for a, t, *_ in rows] == [
        ("login.failed", "address:192.0.2.1"),
        ("login.failed", "address:203.0.113.5"),
    ]
    details = rows[1][4]
    assert details["count"] == 500 and details["first"] == T + 1
    assert abs(details["last"] - (T + 1 + 499 * 0.1)) < 1e-6
    assert tally.flush(world.db, T + 120) == 0 and len(tally) == 0
    assert world.db.run(audit.verify).ok  # the rows are part of the chain


def test_keys_are_kept_apart_by_workspace_actor_and_bucket(world):
    start = _last_id(world)
    ws = world.workspace()
    tally = AuditTally(bucket_seconds=60)
    tally.add("authz.refused", "project:1", now=T + 1, workspace_id=ws["id"])
    tally.add("authz.refused", "project:1", now=T + 2, workspace_id=ws["id"])
    tally.add("authz.refused", "project:1", now=T + 61, workspace_id=ws["id"])
    tally.add("media.view", "user:7", now=T + 5, bucket_seconds=86_400)
    tally.add("media.view", "user:7", now=T + 3_000, bucket_seconds=86_400)
    assert tally.flush(world.db, T + 200) == 2  # the day's bucket is still open
    assert tally.flush(world.db, T + 200, everything=True) == 1
    rows = _rows(world, start)[1:]  # after the workspace's own row
    counts = [(a, t, w, d["count"]) for a, t, w, _, d in rows]
    assert counts == [
        ("authz.refused", "project:1", ws["id"], 2),
        ("authz.refused", "project:1", ws["id"], 1),
        ("media.view", "user:7", None, 2),
    ]


def test_a_flood_of_distinct_keys_folds_into_one_overflow_row(world):
    start = _last_id(world)
    tally = AuditTally(bucket_seconds=60, max_keys=10)
    for i in range(5_000):
        tally.add("login.failed.username", f"username:u{i}", now=T + 1)
    tally.add("login.failed", "address:203.0.113.5", now=T + 1)
    assert len(tally) <= 12
    assert tally.flush(world.db, T + 60) == len(_rows(world, start)) == 12
    overflow = {a: d for a, t, _, _, d in _rows(world, start) if t == "*"}
    assert overflow["login.failed.username"]["count"] == 4_990
    assert overflow["login.failed"]["count"] == 1 and overflow["login.failed"]["overflow"]


def test_the_server_writes_the_tally_at_shutdown(world, run_async):
    start = _last_id(world)

    async def serve_and_stop() -> None:
        async with lifespan(world.app):
            world.ctx.tally.add("login.failed", "address:192.0.2.9", now=world.clock())
            await asyncio.sleep(0)

    run_async(serve_and_stop())
    assert [(a, t, d["count"]) for a, t, _, _, d in _rows(world, start)] == [
        ("login.failed", "address:192.0.2.9", 1)
    ]
