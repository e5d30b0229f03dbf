"""The hot path's database access: raw DB-API cursors, statements rendered once per driver.

``next`` and ``submit`` run thousands of times a second, so they skip SQLAlchemy's
per-statement machinery: a :class:`Sql` is written once with ``:name`` parameters and
rendered for sqlite3 (which takes ``:name`` itself) and psycopg (``%(name)s``) at import
time; :class:`Hot` executes it on the driver's cursor and returns plain tuples.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from labelfarm.db.bridge import wait

T = TypeVar("T")

_PARAM = re.compile(r"(?<![:\w]):(\w+)")


class Sql:
    """One statement, with an optional PostgreSQL variant when the two must differ."""

    __slots__ = ("pg", "sqlite")

    def __init__(self, sqlite: str, pg: str | None = None) -> None:
        self.sqlite = sqlite
        source = pg if pg is not None else sqlite
        self.pg = _PARAM.sub(r"%(\1)s", source.replace("%", "%%"))


class Hot:
    """A raw cursor for the hot path. On SQLite it is inside one write transaction; on
    PostgreSQL each statement commits by itself (one round trip) unless the caller opens
    :meth:`transaction`."""

    __slots__ = ("cursor", "dialect", "durable", "is_pg")

    def __init__(self, cursor: Any, dialect: str, durable: bool = False) -> None:
        self.cursor = cursor
        self.dialect = dialect
        self.is_pg = dialect == "postgresql"
        #: every commit waits for the WAL flush, a single statement included
        self.durable = durable

    def _sql(self, sql: Sql) -> str:
        return sql.pg if self.is_pg else sql.sqlite

    def rows(self, sql: Sql, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        self.cursor.execute(self._sql(sql), params)
        return self.cursor.fetchall()  # type: ignore[no-any-return,unused-ignore]

    def one(self, sql: Sql, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        self.cursor.execute(self._sql(sql), params)
        return self.cursor.fetchone()  # type: ignore[no-any-return,unused-ignore]

    def run(self, sql: Sql, params: Mapping[str, Any]) -> None:
        """Execute without reading a result (in a PostgreSQL pipeline: no round trip)."""
        self.cursor.execute(self._sql(sql), params)

    def many(
        self, sql: Sql, params: Sequence[Mapping[str, Any]] | Iterable[Mapping[str, Any]]
    ) -> None:
        params = list(params)
        if len(params) == 1:
            self.cursor.execute(self._sql(sql), params[0])
        elif params:
            self.cursor.executemany(self._sql(sql), params)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Make the statements inside one transaction. SQLite's hot connection is always in
        one (``BEGIN IMMEDIATE``). PostgreSQL's runs in autocommit until asked; the
        transaction is pipelined, so statements whose results are not read (updates) travel
        with the next one that is read, and BEGIN and COMMIT cost no round trip of their own."""
        if not self.is_pg:
            yield
            return
        conn = self.cursor.connection
        with conn.pipeline(), conn.transaction():
            if not self.durable:
                self.cursor.execute("SET LOCAL synchronous_commit = on")  # work is durable
            yield

    def ids(self, values: Iterable[Any]) -> Any:
        """A list parameter: a JSON array for SQLite's ``json_each``, a list for PostgreSQL."""
        values = list(values)
        if self.is_pg:
            return values
        import orjson

        return orjson.dumps(values).decode()


class BridgedHot(Hot):
    """PostgreSQL through an asynchronous psycopg cursor, for code run by
    :func:`labelfarm.db.bridge.spawn`: each statement waits on the event loop, so a server
    process keeps serving other requests during the round trip."""

    __slots__ = ()

    def __init__(self, cursor: Any, durable: bool = False) -> None:
        super().__init__(cursor, "postgresql", durable)

    def rows(self, sql: Sql, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        return wait(_fetch_all(self.cursor, sql.pg, params))

    def one(self, sql: Sql, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        return wait(_fetch_one(self.cursor, sql.pg, params))

    def run(self, sql: Sql, params: Mapping[str, Any]) -> None:
        wait(self.cursor.execute(sql.pg, params))

    def many(
        self, sql: Sql, params: Sequence[Mapping[str, Any]] | Iterable[Mapping[str, Any]]
    ) -> None:
        params = list(params)
        if len(params) == 1:
            wait(self.cursor.execute(sql.pg, params[0]))
        elif params:
            wait(self.cursor.executemany(sql.pg, params))

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


def id_list(column: str, param: str) -> tuple[str, str]:
    """``column IN <list param>`` for SQLite and PostgreSQL."""
    return (
        f"{column} IN (SELECT value FROM json_each(:{param}))",
        f"{column} = ANY(:{param})",
    )
