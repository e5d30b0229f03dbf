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
from typing import Any

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

    __slots__ = ("cursor", "dialect", "is_pg")

    def __init__(self, cursor: Any, dialect: str) -> None:
        self.cursor = cursor
        self.dialect = dialect
        self.is_pg = dialect == "postgresql"

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
            self.cursor.execute("SET LOCAL synchronous_commit = on")  # work is durable
            yield

    def ids(self, values: Iterable[Any]) -> Any:
        """A list parameter: a JSON array for SQLite's ``json_each``, a list for PostgreSQL."""
        values = list(values)
        if self.is_pg:
            return values
        import orjson

        return orjson.dumps(values).decode()


def id_list(column: str, param: str) -> tuple[str, str]:
    """``column IN <list param>`` for SQLite and PostgreSQL."""
    return (
        f"{column} IN (SELECT value FROM json_each(:{param}))",
        f"{column} = ANY(:{param})",
    )
