"""The database handle: engine, SQLite PRAGMAs, the single writer, and migrations.

SQLite is used the way it works best: WAL journal, one writer at a time in a process
(``Database.write`` takes a lock and opens the transaction with ``BEGIN IMMEDIATE``, so
writers queue in the process instead of failing with "database is locked"), readers in
parallel. PostgreSQL runs the same code with ordinary transactions; the hot queue
statements use ``FOR UPDATE SKIP LOCKED`` there.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from labelfarm.db import bridge
from labelfarm.db.hot import BridgedHot, Hot
from labelfarm.db.hot_pools import BridgedPool, SyncPool

T = TypeVar("T")

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
    "PRAGMA temp_store=MEMORY",
    # 16 MB of page cache per connection and no memory map: the OS page cache already
    # holds the hot pages, and the server's memory stays flat as projects grow.
    "PRAGMA cache_size=-16384",
)


def _sqlite_engine(url: str) -> Engine:
    path = make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "isolation_level": None},
        pool_size=8,
        max_overflow=8,
    )

    @event.listens_for(engine, "connect")
    def _set_pragmas(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("labelfarm_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """An engine plus the rules for reading and writing through it."""

    def __init__(self, url: str, hot_connections: int = 16) -> None:
        self.url = url
        self.hot_connections = hot_connections
        self.is_sqlite = url.startswith("sqlite")
        self.dialect = "sqlite" if self.is_sqlite else "postgresql"
        if self.is_sqlite:
            self.engine = _sqlite_engine(url)
        else:
            self.engine = create_engine(url, pool_size=20, max_overflow=20, pool_recycle=1800)
        self._writer = threading.Lock()
        self._hot: sqlite3.Connection | None = None
        self._sync_pools: dict[bool, SyncPool] = {}
        self._bridged_pools: dict[bool, BridgedPool] = {}

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction. On SQLite, writers in this process take turns."""
        if self.is_sqlite:
            with self._writer, self.engine.connect() as conn:
                conn = conn.execution_options(labelfarm_write=True)
                with conn.begin():
                    yield conn
        else:
            with self.engine.begin() as conn:
                yield conn

    @contextmanager
    def hot(self, durable: bool = False) -> Iterator[Hot]:
        """Database work on a raw driver connection, for the hot path.

        SQLite: one write transaction under the process's writer lock, on one long-lived
        connection, ``BEGIN IMMEDIATE``. PostgreSQL: a pooled autocommit connection; use
        ``Hot.transaction()`` to group statements. ``durable`` asks for a connection whose
        every commit waits for the WAL flush (see :mod:`labelfarm.db.hot_pools`). Inside
        :meth:`call_hot` the connection is asynchronous (:class:`BridgedHot`): the code
        reads the same, and the event loop serves other requests during round trips.
        """
        if self.is_sqlite:
            with self._writer:
                raw = self._sqlite_hot_connection()
                cur = raw.cursor()
                cur.execute("BEGIN IMMEDIATE")
                try:
                    yield Hot(cur, "sqlite", durable=True)
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                cur.execute("COMMIT")
            return
        if bridge.bridged():
            with self._bridged_hot(durable) as hot:
                yield hot
            return
        pool = self._sync_pools.get(durable)
        if pool is None:
            pool = self._sync_pools.setdefault(
                durable, SyncPool(self._pg_conninfo(), durable, self.hot_connections)
            )
        driver = pool.take()
        try:
            with driver.cursor() as cur:
                yield Hot(cur, "postgresql", durable=durable)
        finally:
            pool.give(driver)

    @contextmanager
    def hot_read(self) -> Iterator[Hot]:
        """Reads on a raw driver connection, for lookups on the hot path (tokens, roles).

        SQLite: a pooled connection of its own in autocommit, so a long write elsewhere
        (an import holding the writer's lock) never holds it up. PostgreSQL: as :meth:`hot`.
        """
        if not self.is_sqlite:
            with self.hot() as hot:
                yield hot
            return
        with self.engine.connect() as conn:
            cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                yield Hot(cur, "sqlite")
            finally:
                cur.close()

    @contextmanager
    def _bridged_hot(self, durable: bool) -> Iterator[Hot]:
        pool = self._bridged_pools.get(durable)
        if pool is None or pool.loop is not asyncio.get_running_loop():
            if pool is not None:  # an earlier event loop's (tests run several)
                pool.close()
            pool = BridgedPool(self._pg_conninfo(), durable, self.hot_connections)
            self._bridged_pools[durable] = pool
        conn = bridge.wait(pool.take())
        reuse = False
        try:
            yield BridgedHot(conn.cursor(), durable)
            reuse = True
        except Exception:
            reuse = True  # an error the statement reported; the connection is sound
            raise
        finally:
            # a cancellation may leave a statement in flight: that connection is closed
            pool.give(conn, reuse)

    def _pg_conninfo(self) -> str:
        return make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)

    def _sqlite_hot_connection(self) -> sqlite3.Connection:
        if self._hot is None:
            path = make_url(self.url).database or ":memory:"
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            for pragma in SQLITE_PRAGMAS:
                conn.execute(pragma)
            self._hot = conn
        return self._hot

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reading; its transaction is rolled back on exit."""
        with self.engine.connect() as conn:
            yield conn

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking database work from async code.

        SQLite has one writer and statements take microseconds, so the work runs
        inline on the event loop (no thread hop); PostgreSQL work goes to a worker
        thread so that network round trips overlap.
        """
        if self.is_sqlite:
            return fn(*args)
        return await anyio.to_thread.run_sync(fn, *args)

    async def call_hot(self, fn: Callable[..., T], *args: Any) -> T:
        """Run hot-path work (next, submit, skip) on the event loop, without a thread hop.

        SQLite: inline; its statements take microseconds. PostgreSQL: ``fn`` runs through
        :func:`labelfarm.db.bridge.spawn`, so :meth:`hot` inside it waits for the database
        asynchronously and one server process overlaps many requests' round trips. ``fn``
        must be safe to run twice: a lost connection is retried once.
        """
        if self.is_sqlite:
            return fn(*args)
        import psycopg

        try:
            return await bridge.spawn(fn, *args)
        except psycopg.OperationalError:
            # Connections kept open across a database restart fail on their first use (and
            # the pool then drops its idle ones). Hot-path calls are safe to repeat: live
            # leases come back first, submissions are idempotent by their client ids.
            return await bridge.spawn(fn, *args)

    def dispose(self) -> None:
        for pool in self._sync_pools.values():
            pool.close()
        for bridged in self._bridged_pools.values():
            bridged.close()
        self._bridged_pools.clear()
        if self._hot is not None:
            self._hot.close()
            self._hot = None
        self.engine.dispose()


def migrate(db: Database, revision: str = "head") -> None:
    """Apply the Alembic migrations shipped in the package."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    with db.engine.connect() as conn:
        if db.is_sqlite:
            # SQLite migrations rebuild tables (copy, drop, rename); foreign keys must be off
            # meanwhile, which only takes effect outside a transaction, so on the raw driver.
            raw: Any = conn.connection.driver_connection
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
                if db.is_sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"migration broke foreign keys: {broken[:5]}")
        finally:
            if db.is_sqlite:
                raw.execute("PRAGMA foreign_keys=ON")
