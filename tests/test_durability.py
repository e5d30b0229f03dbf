"""Durability and connections: SQLite's ``synchronous`` is what the setting says on every
kind of connection, and on PostgreSQL the permission check's lookups survive the database
dropping every connection (a restart, a failover)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from labelfarm.db.engine import Database
from labelfarm.db.tx import Sql, Tx, transaction
from labelfarm.services import projects
from labelfarm.settings import Settings
from labelfarm.web.app import create_app
from test_reconnect import _terminate_other_backends  # type: ignore[import-not-found]

SYNCHRONOUS = Sql("PRAGMA synchronous")
LEVEL = {"NORMAL": 1, "FULL": 2}


@transaction("lookup")
def _on_lookup(tx: Tx) -> int:
    return int(tx.rows(SYNCHRONOUS, {})[0][0])


@transaction("lease")
def _on_hot(tx: Tx) -> int:
    return int(tx.rows(SYNCHRONOUS, {})[0][0])


def _levels(db: Database) -> dict[str, int]:
    """``PRAGMA synchronous`` on each kind of connection the database hands out."""
    out = {"lookup": db.run(_on_lookup), "hot": db.run(_on_hot)}
    for kind in ("read", "write"):
        with db.begin(kind) as tx:
            out[kind] = int(tx.execute(text("PRAGMA synchronous")).scalar_one())
    return out


@pytest.mark.parametrize("level", ["NORMAL", "FULL"])
def test_sqlite_synchronous_is_the_setting_on_every_connection(
    tmp_path: Path, sqlite_template: Path, level: str
) -> None:
    path = tmp_path / "labelfarm.db"
    path.write_bytes(sqlite_template.read_bytes())
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{path}",
        secret_key="test-secret",
        sqlite_synchronous=level,  # type: ignore[arg-type]
    )
    app = create_app(settings, run_migrations=False)
    try:
        levels = _levels(app.state.ctx.db)
    finally:
        app.state.ctx.db.dispose()
    assert levels == dict.fromkeys(("lookup", "hot", "read", "write"), LEVEL[level])


def test_the_default_is_normal_and_nothing_else_is_taken(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).sqlite_synchronous == "NORMAL"
    with pytest.raises(ValueError):
        Settings(data_dir=tmp_path, sqlite_synchronous="OFF")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Database(f"sqlite:///{tmp_path / 'x.db'}", synchronous="OFF")


# -- PostgreSQL: lookups after the database dropped every connection ----------------------
def test_permission_checks_survive_the_database_dropping_every_connection(
    world: Any, tmp_path: Path, db_url: str
) -> None:
    """The permission check looks up the token, the project (a read on the pool's
    connections) and the role: each runs once more on a fresh connection, not a 500."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has no server connections to lose")
    ws = world.workspace()
    ann = world.user("ann", role="annotator", workspace=ws)
    project = world.project(ws)
    world.add_items(project, 4, tmp_path)
    first = ann["client"].next(project.id)  # every kind of connection is open now
    assert ann["client"].me()["id"] == ann["id"]
    for _ in range(2):  # twice: the retry leaves no dead connection behind for later
        assert _terminate_other_backends(db_url) > 0
        world.clock.advance(60)  # the token, role and project caches have expired
        again = ann["client"].next(project.id)
        assert [t["task"] for t in again] == [first[0]["task"]]
        assert ann["client"].request("GET", f"/projects/{project.id}")["id"] == project.id


def test_reads_from_synchronous_code_survive_a_dropped_connection(world: Any, db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has no server connections to lose")
    ws = world.workspace()
    project = world.project(ws)
    assert world.db.run(projects.load_project, project.id).id == project.id
    assert _terminate_other_backends(db_url) > 0
    assert world.db.run(projects.load_project, project.id).id == project.id
