"""Which database a URL names: the one place the question is asked.

Everything else reads ``Database.dialect`` or ``Tx.dialect``; statements differ between the
two only where :class:`labelfarm.db.tx.Sql` renders them (list parameters, row locks).
"""

from __future__ import annotations

from enum import StrEnum


class Dialect(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"

    @classmethod
    def of(cls, url: str) -> Dialect:
        """The dialect of a SQLAlchemy URL (``sqlite:///…`` or ``postgresql+psycopg://…``)."""
        scheme = url.split(":", 1)[0].split("+", 1)[0]
        if scheme == "sqlite":
            return cls.SQLITE
        if scheme in ("postgresql", "postgres"):
            return cls.POSTGRESQL
        raise ValueError(
            f"unsupported database URL {url.split('@')[-1]!r}: use sqlite or postgresql"
        )
