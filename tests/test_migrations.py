"""Migrations: a database made by the first release upgrades to the current schema with its
data intact, on SQLite (whose migrations rebuild tables) and PostgreSQL."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from labelfarm.db.engine import Database, migrate
from labelfarm.db.tables import metadata
from labelfarm.services import projects

PG_URL = os.environ.get("LABELFARM_TEST_DATABASE_URL", "")


def _pg_admin_url() -> str:
    url = make_url(PG_URL)
    return f"host={url.host or '127.0.0.1'} port={url.port or 5432} user={url.username} " + (
        f"dbname={url.database}"
    )


ROWS = [
    "INSERT INTO workspaces (id, slug, name, created_at) VALUES (1, 'w', 'W', 0)",
    "INSERT INTO users (id, username, display_name, pseudonym, locale, is_superuser, "
    "is_active, created_at) VALUES (1, 'u', 'U', 'a-1', 'en', false, true, 0)",
    "INSERT INTO projects (id, workspace_id, name, description, guidelines, schema_version, "
    "overlap, lease_seconds, ordering, n_items, created_at, updated_at) "
    "VALUES (1, 1, 'p', '', '', 1, 2, 600, 'fifo', 2, 0, 0)",
    "INSERT INTO schema_versions (project_id, version, schema, created_at) VALUES (1, 1, '"
    + json.dumps({"fields": [{"name": "label", "type": "choice", "options": ["a", "b"]}]})
    + "', 0)",
    "INSERT INTO items (id, project_id, external_id, data, priority, deadline_key, is_open, "
    "status, n_leased, n_submitted, created_at) VALUES "
    "(1, 1, 'x1', '{\"text\": \"one\"}', 0, 1e18, true, 'ready', 0, 1, 0), "
    "(2, 1, NULL, '{\"text\": \"two\"}', 0, 1e18, true, 'ready', 1, 0, 0)",
    "INSERT INTO assignments (project_id, item_id, user_id, state, leased_at, expires_at) "
    "VALUES (1, 1, 1, 'submitted', 0, 0), (1, 2, 1, 'leased', 0, 9e9)",
    "INSERT INTO annotations (project_id, item_id, user_id, client_id, value, schema_version, "
    "status, from_prediction, created_at) "
    "VALUES (1, 1, 1, 'c1', '{\"label\": \"a\"}', 1, 'accepted', false, 0)",
]


def _upgrade_with_data(url: str) -> None:
    db = Database(url)
    migrate(db, "0001")
    with db.engine.begin() as conn:
        for sql in ROWS:
            conn.execute(text(sql))
    migrate(db)
    with db.begin("read") as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        counts = [
            conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
            for t in ("items", "assignments", "annotations")
        ]
        gold = conn.execute(text("SELECT COUNT(*) FROM items WHERE is_gold")).scalar_one()
        project = projects.load_project(conn, 1)
        inspector = inspect(conn.conn)
        referred = {
            table: sorted(fk["referred_table"] for fk in inspector.get_foreign_keys(table))
            for table in ("assignments", "annotations")
        }
    db.dispose()
    assert version == _head() and counts == [2, 2, 1] and gold == 0
    # the hot tables keep their keys to items and users, not to the project's one row
    assert referred == {
        "assignments": ["items", "users"],
        "annotations": ["annotations", "items", "users"],
    }
    assert project.overlap == 2 and project.gold_rate == 0 and not project.adaptive


def _head() -> str:
    """The newest revision shipped in the package."""
    import labelfarm.db.engine as engine

    script = ScriptDirectory(str(Path(engine.__file__).parent / "migrations"))
    head = script.get_current_head()
    assert head is not None
    return head


def test_sqlite_upgrade_keeps_the_data(tmp_path: Path):
    _upgrade_with_data(f"sqlite:///{tmp_path / 'old.db'}")


def test_postgresql_upgrade_keeps_the_data():
    if not PG_URL:
        pytest.skip("LABELFARM_TEST_DATABASE_URL is not set")
    name = f"labelfarm_migrate_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_pg_admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        _upgrade_with_data(make_url(PG_URL).set(database=name).render_as_string(False))
    finally:
        with psycopg.connect(_pg_admin_url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migrations_build_the_declared_tables(pg_url):
    """The tables the code declares (``db/tables.py``, the projects' setting columns built from
    ``db/project_settings.py``) are exactly what the migrations build: types, defaults,
    indexes and keys. On PostgreSQL; SQLite's reflection reports differences that are not
    there (text defaults, expression indexes)."""
    db = Database(pg_url)
    try:
        with db.engine.connect() as conn:
            options = {"compare_server_default": True, "compare_type": True}
            context = MigrationContext.configure(conn, opts=options)
            assert compare_metadata(context, metadata) == []
    finally:
        db.dispose()
