"""Shared fixtures: the real app in-process on a real database.

SQLite always; PostgreSQL too when ``LABELFARM_TEST_DATABASE_URL`` is set (the tests then
run in a database of their own on that server, created and dropped here). Migrations run
once per session; each test starts from empty tables.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from labelfarm.client import AppTransport, Client
from labelfarm.db.engine import Database, migrate
from labelfarm.db.tables import metadata
from labelfarm.services import projects, users, workspaces
from labelfarm.settings import Settings
from labelfarm.web.app import create_app

PG_URL = os.environ.get("LABELFARM_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]
T0 = 1_800_000_000.0

CHOICE_SCHEMA = {"fields": [{"name": "label", "type": "choice", "options": ["a", "b", "c"]}]}


class Clock:
    """A clock the tests move by hand."""

    def __init__(self, start: float = T0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def _pg_admin_url() -> str:
    url = make_url(PG_URL)
    host, port = url.host or "127.0.0.1", url.port or 5432
    return f"host={host} port={port} user={url.username} dbname={url.database}"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session."""
    if not PG_URL:
        pytest.skip("LABELFARM_TEST_DATABASE_URL is not set")
    name = f"labelfarm_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_pg_admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    db = Database(url)
    migrate(db)
    db.dispose()
    yield url
    with psycopg.connect(_pg_admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "labelfarm.db"
    db = Database(f"sqlite:///{path}")
    migrate(db)
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()
    return path


def _truncate(url: str) -> None:
    db = Database(url)
    names = ", ".join(t.name for t in metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        # a test may have dropped the audit log's guard, as an attacker would
        conn.execute(
            text(
                "CREATE OR REPLACE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON "
                "audit_log FOR EACH ROW EXECUTE FUNCTION labelfarm_audit_append_only()"
            )
        )
    db.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "postgresql":
        url: str = request.getfixturevalue("pg_url")
        _truncate(url)
        return url
    target = tmp_path / "labelfarm.db"
    shutil.copy(sqlite_template, target)
    return f"sqlite:///{target}"


def _run_in_fresh_loop(coro: Any) -> Any:
    """``asyncio.run`` in a thread of its own: the browser tests' driver keeps an event loop
    running in the main thread, where ``asyncio.run`` would refuse to start."""
    box: dict[str, Any] = {}

    def main() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=main)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


@pytest.fixture
def run_async() -> Any:
    """Run a coroutine to its end from a test, whatever the main thread is running."""
    return _run_in_fresh_loop


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=db_url, secret_key="test-secret")


@pytest.fixture
def app(settings: Settings, clock: Clock) -> Iterator[Any]:
    application = create_app(settings, clock=clock, run_migrations=False)
    yield application
    application.state.ctx.db.dispose()


@pytest.fixture
def transport(app: Any) -> Iterator[AppTransport]:
    t = AppTransport(app)
    yield t
    t.close()


class World:
    """Factories for rows, and clients acting as the users they create."""

    def __init__(self, app: Any, transport: AppTransport, clock: Clock) -> None:
        self.app = app
        self.ctx = app.state.ctx
        self.db: Database = self.ctx.db
        self.transport = transport
        self.clock = clock

    def client(self, token: str | None = None) -> Client:
        return Client("http://testserver", token=token, transport=self.transport)

    def workspace(self, slug: str = "acme") -> dict[str, Any]:
        return self.db.run(
            workspaces.create_workspace, slug=slug, name=slug.title(), now=self.clock()
        )

    def user(
        self,
        username: str,
        *,
        role: str | None = None,
        workspace: dict | None = None,
        superuser: bool = False,
        password: str | None = None,
    ) -> dict[str, Any]:
        """A user with a token; ``client`` acts as that user. Without a password (the
        default, as argon2 is slow on purpose) the user can only use its token."""
        now = self.clock()
        member = role is not None and workspace is not None
        user = self.db.run(
            users.register,
            username=username,
            password=password,
            now=now,
            is_superuser=superuser,
            workspace_id=workspace["id"] if member and workspace else None,
            role=role if member else None,
        )
        user.pop("role", None)
        token = self.db.run(users.create_token, user_id=user["id"], name="test", now=now)["token"]
        return {**user, "token": token, "client": self.client(token)}

    def project(self, workspace: dict, *, schema: dict | None = None, **settings: Any) -> Any:
        created = self.db.run(
            projects.create_project,
            workspace_id=workspace["id"],
            name=settings.pop("name", "p"),
            schema=schema or CHOICE_SCHEMA,
            now=self.clock(),
            actor_id=None,
            **settings,
        )
        return self.load(created["id"])

    def load(self, project_id: int) -> Any:
        return self.db.run(projects.load_project, project_id)

    def item_ids(self, project_id: int, user: dict, tasks: list[dict]) -> list[int]:
        """The item ids behind an annotator's tasks (or submit results), as the server sees
        them; annotators see only their handles."""
        return [self.ctx.handles.decode(project_id, user["id"], t["task"]) for t in tasks]

    def handle(self, project_id: int, user: dict, item_id: int) -> str:
        """The handle an annotator is given for an item."""
        return str(self.ctx.handles.encode(project_id, user["id"], item_id))

    def add_items(self, project: Any, n: int, tmp: Path, **extra: Any) -> None:
        from labelfarm.jsonutil import dumps
        from labelfarm.services.imports import import_items

        path = tmp / f"items-{uuid.uuid4().hex[:6]}.jsonl"
        path.write_text(
            "".join(dumps({"data": {"text": f"item {i}"}, **extra}) + "\n" for i in range(n))
        )
        self.db.run(
            import_items,
            project,
            path,
            "jsonl",
            media=self.ctx.media,
            now=self.clock(),
            user_id=None,
        )


@pytest.fixture
def world(app: Any, transport: AppTransport, clock: Clock) -> World:
    return World(app, transport, clock)
