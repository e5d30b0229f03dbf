"""Transactions: the one handle services work through, and statements written once.

A service function takes a :class:`Tx` (or, for work spanning several transactions, the
:class:`labelfarm.db.engine.Database`) and declares what it needs with :func:`transaction`
(or :func:`workflow`); ``Database.run`` / ``run_async`` open that transaction, call the
function, commit, and retry as declared. The kinds:

========  =====================================================================  ==========
kind      the handle                                                             runs
========  =====================================================================  ==========
read      :class:`CoreTx`, rolled back at the end                                a thread
write     :class:`CoreTx`, committed; on SQLite the process's single writer      a thread
lookup    :class:`Tx` for single indexed reads (tokens, roles); never waits for  the loop
          the writer
lease     :class:`Tx` on a hot connection; on SQLite the single writer, on       the loop
          PostgreSQL autocommit whose commits need not wait for the WAL flush
submit    :class:`Tx` on a hot connection whose every commit is durable          the loop
========  =====================================================================  ==========

"The loop" means on the server's event loop: inline on SQLite, whose hot statements take
microseconds, and on PostgreSQL through :mod:`labelfarm.db.bridge`, waiting for the database
asynchronously. Work that can take longer (a large read, a password hash) is a ``read``,
``write`` or ``workflow`` and runs in a thread.

:class:`Sql` is one statement, written once with ``:name`` parameters. The few differences
between the databases are rendered here: ``col IN :name`` takes a list (``json_each`` on
SQLite, ``= ANY`` on PostgreSQL) and ``lock=`` is a row-locking tail PostgreSQL needs and
SQLite (one writer) does not. A statement may name a row type (a ``NamedTuple``) for its
results. PostgreSQL-only single-statement fast paths are marked ``postgresql_only``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

import orjson
from sqlalchemy import Connection, CursorResult

from labelfarm.db.bridge import wait
from labelfarm.db.dialect import Dialect

R = TypeVar("R")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

KINDS = ("read", "write", "lookup", "lease", "submit")
ON_LOOP = frozenset({"lookup", "lease", "submit"})
WORKFLOW = "workflow"

_PARAM = re.compile(r"(?<![:\w]):(\w+)")
_LIST = re.compile(r"\b(NOT\s+)?IN\s+:(\w+)\b")


# -- how a service declares its transaction ---------------------------------------------------
@dataclass(frozen=True, slots=True)
class Unit:
    """What a service function needs: its transaction kind and the errors that mean "run me
    again in a fresh transaction" (at most ``attempts`` times in all)."""

    kind: str
    retry: tuple[type[BaseException], ...] = ()
    attempts: int = 1

    @property
    def on_loop(self) -> bool:
        return self.kind in ON_LOOP


def transaction(
    kind: str, *, retry: tuple[type[BaseException], ...] = (), attempts: int = 3
) -> Callable[[F], F]:
    """Declare that a service function runs in one transaction of ``kind``: it takes the
    :class:`Tx` first. It stays an ordinary function (another service may call it inside
    its own transaction)."""
    if kind not in KINDS:
        raise ValueError(f"unknown transaction kind {kind!r}; valid: {list(KINDS)}")
    unit = Unit(kind, retry, attempts if retry else 1)

    def declare(fn: F) -> F:
        fn.__unit__ = unit  # type: ignore[attr-defined]
        return fn

    return declare


def workflow(fn: F) -> F:
    """Declare a service function that opens transactions itself: it takes the ``Database``
    first and always runs in a thread (imports, exports, a login's password check)."""
    fn.__unit__ = Unit(WORKFLOW)  # type: ignore[attr-defined]
    return fn


def unit_of(fn: Callable[..., Any]) -> Unit:
    unit: Unit | None = getattr(fn, "__unit__", None)
    if unit is None:
        name = getattr(fn, "__qualname__", repr(fn))
        raise TypeError(f"{name} declares no transaction: decorate it with @transaction(kind)")
    return unit


# -- statements ---------------------------------------------------------------------------------
class Sql(Generic[R]):
    """One statement for both databases (see the module's docstring)."""

    __slots__ = ("lists", "pg", "row", "sqlite")

    @overload
    def __init__(
        self: Sql[tuple[Any, ...]], text: str, *, lock: str = "", postgresql_only: bool = False
    ) -> None: ...

    @overload
    def __init__(
        self, text: str, *, row: Callable[..., R], lock: str = "", postgresql_only: bool = False
    ) -> None: ...

    def __init__(
        self,
        text: str,
        *,
        row: Callable[..., Any] | None = None,
        lock: str = "",
        postgresql_only: bool = False,
    ) -> None:
        self.lists = tuple(m.group(2) for m in _LIST.finditer(text))
        self.row = getattr(row, "_make", row)
        self.sqlite: str | None = None
        if not postgresql_only:
            self.sqlite = _LIST.sub(
                lambda m: f"{m.group(1) or ''}IN (SELECT value FROM json_each(:{m.group(2)}))", text
            )
        pg = _LIST.sub(lambda m: f"{'<> ALL' if m.group(1) else '= ANY'}(:{m.group(2)})", text)
        pg = f"{pg} {lock}" if lock else pg
        self.pg = _PARAM.sub(r"%(\1)s", pg.replace("%", "%%"))


# -- the handle ---------------------------------------------------------------------------------
class Tx:
    """A transaction's handle on a driver cursor: runs :class:`Sql` statements.

    On SQLite and in :class:`CoreTx` every statement is inside the transaction already. A
    PostgreSQL hot connection (``lease``, ``submit``, ``lookup``) runs in autocommit, each
    statement one round trip committed by itself, until :meth:`transaction` groups some.
    """

    __slots__ = ("_pg", "cursor", "dialect", "durable", "kind")

    def __init__(self, cursor: Any, dialect: Dialect, kind: str, durable: bool = False) -> None:
        self.cursor = cursor
        self.dialect = dialect
        self.kind = kind
        self._pg = dialect is Dialect.POSTGRESQL
        #: every commit waits for the WAL flush, a single statement's included
        self.durable = durable

    def _lists(self, sql: Sql[Any], params: Mapping[str, Any]) -> Mapping[str, Any]:
        """The parameters with each list parameter as the driver takes it."""
        out = dict(params)
        for name in sql.lists:
            values = list(out[name])
            out[name] = values if self._pg else orjson.dumps(values).decode()
        return out

    # The four methods below are the hot path's: the common case costs no extra call.
    def rows(self, sql: Sql[R], params: Mapping[str, Any]) -> list[R]:
        text = sql.pg if self._pg else (sql.sqlite or _postgresql_only())
        self.cursor.execute(text, self._lists(sql, params) if sql.lists else params)
        rows = self.cursor.fetchall()
        make = sql.row
        return [make(r) for r in rows] if make else rows

    def one(self, sql: Sql[R], params: Mapping[str, Any]) -> R | None:
        text = sql.pg if self._pg else (sql.sqlite or _postgresql_only())
        self.cursor.execute(text, self._lists(sql, params) if sql.lists else params)
        row = self.cursor.fetchone()
        return None if row is None else (sql.row(row) if sql.row else row)

    def run(self, sql: Sql[Any], params: Mapping[str, Any]) -> None:
        """Execute without reading a result (in a PostgreSQL pipeline: no round trip)."""
        text = sql.pg if self._pg else (sql.sqlite or _postgresql_only())
        self.cursor.execute(text, self._lists(sql, params) if sql.lists else params)

    def many(self, sql: Sql[Any], params: Iterable[Mapping[str, Any]]) -> None:
        text = sql.pg if self._pg else (sql.sqlite or _postgresql_only())
        batch = [self._lists(sql, p) for p in params] if sql.lists else list(params)
        if len(batch) == 1:
            self.cursor.execute(text, batch[0])
        elif batch:
            self.cursor.executemany(text, batch)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Make the statements inside one transaction. Only a PostgreSQL hot connection is
        outside one; its transaction is pipelined, so statements whose results are not read
        travel with the next one that is, and BEGIN and COMMIT cost no round trip of their own."""
        if not self._pg:
            yield
            return
        conn = self.cursor.connection
        with conn.pipeline(), conn.transaction():
            if not self.durable:
                self.cursor.execute("SET LOCAL synchronous_commit = on")  # work is durable
            yield


def _postgresql_only() -> str:
    raise RuntimeError("a PostgreSQL-only statement was run on SQLite")


def _shaped(sql: Sql[R], rows: list[Any]) -> list[R]:
    make = sql.row
    return [make(r) for r in rows] if make else rows


class CoreTx(Tx):
    """A ``read`` or ``write`` transaction: :class:`Sql` statements, and SQLAlchemy Core
    statements through :meth:`execute`, on the same connection and transaction."""

    __slots__ = ("conn",)

    def __init__(self, conn: Connection, dialect: Dialect, kind: str) -> None:
        self.conn = conn
        raw: Any = conn.connection.driver_connection
        super().__init__(raw.cursor(), dialect, kind, durable=True)

    def execute(self, statement: Any, params: Any = None) -> CursorResult[*tuple[Any, ...]]:
        """A SQLAlchemy Core statement (or ``text()``) in this transaction."""
        return self.conn.execute(statement, params)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        yield  # already one

    def close(self) -> None:
        self.cursor.close()


class BridgedTx(Tx):
    """A PostgreSQL hot connection through an asynchronous psycopg cursor, for code run by
    :func:`labelfarm.db.bridge.spawn`: each statement waits on the event loop, so a server
    process keeps serving other requests during the round trip."""

    __slots__ = ()

    def rows(self, sql: Sql[R], params: Mapping[str, Any]) -> list[R]:
        params = self._lists(sql, params) if sql.lists else params
        return _shaped(sql, wait(_fetch_all(self.cursor, sql.pg, params)))

    def one(self, sql: Sql[R], params: Mapping[str, Any]) -> R | None:
        params = self._lists(sql, params) if sql.lists else params
        row = wait(_fetch_one(self.cursor, sql.pg, params))
        return None if row is None else (sql.row(row) if sql.row else row)

    def run(self, sql: Sql[Any], params: Mapping[str, Any]) -> None:
        wait(self.cursor.execute(sql.pg, self._lists(sql, params) if sql.lists else params))

    def many(self, sql: Sql[Any], params: Iterable[Mapping[str, Any]]) -> None:
        batch = [self._lists(sql, p) for p in params] if sql.lists else list(params)
        if len(batch) == 1:
            wait(self.cursor.execute(sql.pg, batch[0]))
        elif batch:
            wait(self.cursor.executemany(sql.pg, batch))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        conn = self.cursor.connection
        with entered(conn.pipeline()), entered(conn.transaction()):
            if not self.durable:
                wait(self.cursor.execute("SET LOCAL synchronous_commit = on"))
            yield


async def _fetch_all(cursor: Any, query: str, params: Mapping[str, Any]) -> Any:
    await cursor.execute(query, params)
    return await cursor.fetchall()


async def _fetch_one(cursor: Any, query: str, params: Mapping[str, Any]) -> Any:
    await cursor.execute(query, params)
    return await cursor.fetchone()


@contextlib.contextmanager
def entered(manager: AbstractAsyncContextManager[T]) -> Iterator[T]:
    """An asynchronous context manager used from bridged synchronous code."""
    value = wait(manager.__aenter__())
    try:
        yield value
    except BaseException as exc:
        if not wait(manager.__aexit__(type(exc), exc, exc.__traceback__)):
            raise
    else:
        wait(manager.__aexit__(None, None, None))
