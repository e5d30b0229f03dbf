"""The hot path survives the database dropping its connections (a restart, a failover)."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from sqlalchemy.engine import make_url


def _terminate_other_backends(db_url: str) -> int:
    url = make_url(db_url)
    conninfo = (
        f"host={url.host or '127.0.0.1'} port={url.port or 5432} user={url.username} "
        f"dbname={url.database}"
    )
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0]) if row else 0


def test_next_and_submit_work_after_the_database_drops_every_connection(world, tmp_path, db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has no server connections to lose")
    ws = world.workspace()
    ann = world.user("ann", role="annotator", workspace=ws)
    project = world.project(ws)
    world.add_items(project, 4, tmp_path)
    first = ann["client"].next(project.id)  # opens the hot connections (and caches the token)
    assert len(first) == 1
    assert _terminate_other_backends(db_url) > 0
    world.db.engine.dispose()  # the test's own pooled connections went too

    again = ann["client"].next(project.id)  # the held lease comes back, on a new connection
    assert [t["task"] for t in again] == [first[0]["task"]]
    _terminate_other_backends(db_url)
    world.db.engine.dispose()
    done = ann["client"].submit(
        project.id,
        [{"id": uuid.uuid4().hex, "task": first[0]["task"], "value": {"label": "a"}}],
    )
    assert done[0]["status"] == "accepted"
