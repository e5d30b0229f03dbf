"""The database: connections, the single writer, and the one way to run work on it.

SQLite is used the way it works best: WAL journal, one writer at a time in a process
(a ``write``, ``lease`` or ``submit`` transaction takes the process's writer lock and opens
with ``BEGIN IMMEDIATE``, so writers queue in the process instead of failing with "database
is locked"), readers in parallel. PostgreSQL runs the same code with ordinary transactions;
its hot connections (:mod:`labelfarm.db.pools`) are raw psycopg, kept open.

Service functions declare their transaction (:mod:`labelfarm.db.tx`); :meth:`Database.run`
runs one from synchronous code (the CLI, tests, a thread) and :meth:`Database.run_async`
from the server's event loop, on the loop or in a thread by the declared kind.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar, overload

import anyio.to_thread
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from labelfarm.db import bridge
from labelfarm.db.dialect import Dialect
from labelfarm.db.pools import BridgedPool, SyncPool
from labelfarm.db.tx import WORKFLOW, BridgedTx, CoreTx, Tx, Unit, unit_of

P = ParamSpec("P")
T = TypeVar("T")

# Kinds safe to run again after a lost connection: nothing written (read, lookup), live
# leases come back first (lease), submissions are idempotent by client ids (submit). A write
# is not: a connection lost at its commit leaves the outcome unknown.
REPEATABLE = frozenset({"read", "lookup", "lease", "submit"})

SYNCHRONOUS = ("NORMAL", "FULL")
# WAL with synchronous=NORMAL (the default; FULL by setting): a commit does not wait for the
# disk; a power failure may lose the last commits, never corrupts (docs/architecture.md).
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
    "PRAGMA temp_store=MEMORY",
    # 16 MB of page cache per connection and no memory map: the OS page cache already
    # holds the hot pages, and the server's memory stays flat as projects grow.
    "PRAGMA cache_size=-16384",
)


def _sqlite_pragmas(synchronous: str) -> tuple[str, ...]:
    if synchronous not in SYNCHRONOUS:
        raise ValueError(f"synchronous must be one of {SYNCHRONOUS}, not {synchronous!r}")
    return (*SQLITE_PRAGMAS, f"PRAGMA synchronous={synchronous}")


def _sqlite_engine(url: str, pragmas: tuple[str, ...]) -> Engine:
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
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("labelfarm_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """An engine plus the rules for reading and writing through it."""

    def __init__(self, url: str, hot_connections: int = 16, synchronous: str = "NORMAL") -> None:
        """``synchronous``: SQLite's durability on every connection, ``NORMAL`` or ``FULL``."""
        self.url = url
        self.dialect = Dialect.of(url)
        self.hot_connections = hot_connections
        self.sqlite_pragmas = _sqlite_pragmas(synchronous)
        if self.dialect is Dialect.SQLITE:
            self.engine = _sqlite_engine(url, self.sqlite_pragmas)
        else:
            self.engine = create_engine(url, pool_size=20, max_overflow=20, pool_recycle=1800)
        self._writer = threading.Lock()
        self._lookup_lock = threading.Lock()
        self._raw: dict[str, sqlite3.Connection] = {}
        self._sync_pools: dict[bool, SyncPool] = {}
        self._bridged_pools: dict[bool, BridgedPool] = {}
        self._openers: dict[str, Callable[[], AbstractContextManager[Tx]]] = {
            "read": partial(self._core, "read"),
            "write": partial(self._core, "write"),
            "lookup": self._lookup,
            "lease": partial(self._hot_tx, "lease"),
            "submit": partial(self._hot_tx, "submit"),
        }

    # -- running service functions ---------------------------------------------------------
    def run(self, fn: Callable[Concatenate[Any, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a service function in the transaction it declares (a workflow gets the
        database itself), from synchronous code; retried as it declares, and once more
        after a lost connection when its kind is safe to repeat (``REPEATABLE``)."""
        return self._run(unit_of(fn), fn, args, kwargs)

    def _run(self, unit: Unit, fn: Callable[..., T], args: Any, kwargs: Any) -> T:
        if unit.kind == WORKFLOW:
            return fn(self, *args, **kwargs)
        attempt, reconnected = 0, False
        while True:
            try:
                with self.begin(unit.kind) as tx:
                    return fn(tx, *args, **kwargs)
            except unit.retry:
                attempt += 1
                if attempt >= unit.attempts:
                    raise
            except Exception as exc:
                # connections kept open across a database restart fail on their first use;
                # work safe to repeat runs once more, on a fresh connection
                if reconnected or unit.kind not in REPEATABLE or not self._lost(exc):
                    raise
                reconnected = True
                self.engine.dispose()  # the pool's other idle connections died too

    def _lost(self, exc: BaseException | None) -> bool:
        """Whether ``exc`` says the connection to PostgreSQL is gone (or cannot be made)."""
        if self.dialect is not Dialect.POSTGRESQL:
            return False
        from sqlalchemy.exc import DBAPIError

        if isinstance(exc, DBAPIError):
            return exc.connection_invalidated or self._lost(exc.orig)
        import psycopg

        # no SQLSTATE: the client lost the server; 08: connection exception; 57P: the
        # server shutting down or starting (a statement timeout, 57014, is not one)
        state = getattr(exc, "sqlstate", None) or ""
        return isinstance(exc, psycopg.OperationalError) and (
            not state or state.startswith(("08", "57P"))
        )

    async def run_async(
        self, fn: Callable[Concatenate[Any, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """:meth:`run` from the event loop: ``read``, ``write`` and workflows in a thread;
        the hot kinds on the loop (inline on SQLite; on PostgreSQL waiting for the database
        asynchronously). Retried as :meth:`run` retries."""
        unit = unit_of(fn)
        call = partial(self._run, unit, fn, args, kwargs)
        if not unit.on_loop:
            return await anyio.to_thread.run_sync(call)
        if self.dialect is Dialect.SQLITE:
            return call()
        return await bridge.spawn(call)

    # -- opening transactions ----------------------------------------------------------------
    @overload
    def begin(self, kind: Literal["read", "write"]) -> AbstractContextManager[CoreTx]: ...

    @overload
    def begin(self, kind: str) -> AbstractContextManager[Tx]: ...

    def begin(self, kind: str) -> AbstractContextManager[Tx]:
        """One transaction of ``kind`` (see :mod:`labelfarm.db.tx`), committed on success
        (a ``read`` is rolled back)."""
        opener = self._openers.get(kind)
        if opener is None:
            raise ValueError(f"unknown transaction kind {kind!r}; valid: {list(self._openers)}")
        return opener()

    @contextmanager
    def _core(self, kind: str) -> Iterator[CoreTx]:
        write = kind == "write"
        single = write and self.dialect is Dialect.SQLITE
        lock: AbstractContextManager[Any] = self._writer if single else nullcontext()
        with lock, self.engine.connect() as conn:
            if write:
                conn = conn.execution_options(labelfarm_write=True)
            tx = CoreTx(conn, self.dialect, kind)
            try:
                with conn.begin() as outer:
                    yield tx
                    if not write:
                        outer.rollback()
            finally:
                tx.close()

    @contextmanager
    def _lookup(self) -> Iterator[Tx]:
        """SQLite: a connection of its own in autocommit, so a long write elsewhere (an import
        holding the writer) never holds it up, nor do threads holding the pool's connections.
        PostgreSQL: a hot connection."""
        if self.dialect is Dialect.POSTGRESQL:
            with self._hot_tx("lookup") as tx:
                yield tx
            return
        with self._lookup_lock:
            cur = self._sqlite_connection("lookup").cursor()
            try:
                yield Tx(cur, self.dialect, "lookup")
            finally:
                cur.close()

    @contextmanager
    def _hot_tx(self, kind: str) -> Iterator[Tx]:
        """SQLite: one write transaction under the writer lock, on one long-lived connection.
        PostgreSQL: a pooled autocommit connection (durable for ``submit``, see
        :mod:`labelfarm.db.pools`), asynchronous inside :func:`bridge.spawn`."""
        durable = kind == "submit"
        if self.dialect is Dialect.SQLITE:
            with self._writer:
                cur = self._sqlite_connection("hot").cursor()
                cur.execute("BEGIN IMMEDIATE")
                try:
                    yield Tx(cur, self.dialect, kind, durable=True)
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                cur.execute("COMMIT")
            return
        if bridge.bridged():
            with self._bridged(kind, durable) as tx:
                yield tx
            return
        pool = self._sync_pools.get(durable)
        if pool is None:
            pool = self._sync_pools.setdefault(
                durable, SyncPool(self._pg_conninfo(), durable, self.hot_connections)
            )
        driver = pool.take()
        try:
            with driver.cursor() as cur:
                yield Tx(cur, self.dialect, kind, durable=durable)
        finally:
            pool.give(driver)

    @contextmanager
    def _bridged(self, kind: str, durable: bool) -> Iterator[Tx]:
        import asyncio

        pool = self._bridged_pools.get(durable)
        if pool is None or pool.loop is not asyncio.get_running_loop():
            if pool is not None:  # an earlier event loop's (tests run several)
                pool.close()
            pool = BridgedPool(self._pg_conninfo(), durable, self.hot_connections)
            self._bridged_pools[durable] = pool
        conn = bridge.wait(pool.take())
        reuse = False
        try:
            yield BridgedTx(conn.cursor(), self.dialect, kind, durable)
            reuse = True
        except Exception:
            reuse = True  # an error the statement reported; the connection is sound
            raise
        finally:
            # a cancellation may leave a statement in flight: that connection is closed
            pool.give(conn, reuse)

    def _pg_conninfo(self) -> str:
        return make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)

    def _sqlite_connection(self, role: str) -> sqlite3.Connection:
        """One long-lived raw connection per role (``hot`` under the writer lock, ``lookup``
        under its own), outside the pool that threads share."""
        conn = self._raw.get(role)
        if conn is None:
            path = make_url(self.url).database or ":memory:"
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            for pragma in self.sqlite_pragmas:
                conn.execute(pragma)
            self._raw[role] = conn
        return conn

    def dispose(self) -> None:
        for pool in self._sync_pools.values():
            pool.close()
        for bridged in self._bridged_pools.values():
            bridged.close()
        self._bridged_pools.clear()
        for conn in self._raw.values():
            conn.close()
        self._raw.clear()
        self.engine.dispose()


def migrate(db: Database, revision: str = "head") -> None:
    """Apply the Alembic migrations shipped in the package."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    sqlite = db.dialect is Dialect.SQLITE
    with db.engine.connect() as conn:
        if sqlite:
            # SQLite migrations rebuild tables (copy, drop, rename); foreign keys must be off
            # meanwhile, which only takes effect outside a transaction, so on the raw driver.
            raw: Any = conn.connection.driver_connection
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"migration broke foreign keys: {broken[:5]}")
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys=ON")
