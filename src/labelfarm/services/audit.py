"""The audit log: append-only, hash-chained with a key kept outside the database.

Each row's hash is an HMAC-SHA256, with the instance's audit key, of its own content and
the previous row's hash (:mod:`labelfarm.services.audit_chain`): editing a row breaks its
hash, deleting a row breaks the chain at the next one, ``audit_head`` (the newest id and
hash) catches a deleted tail, and without the key nobody can make the hashes fit again.
Deleting the newest rows *and* moving the head is caught by a signed anchor
(:mod:`labelfarm.services.audit_anchor`). The database also refuses UPDATE and DELETE on
the table (triggers); the chain is what proves nothing was changed behind that.

Rows are written for logins, logouts, imports (failed ones too), exports, role, user, token
and settings changes, never per annotation, per ``next`` or per media view (that would put a
serialised write on the hot path); floods of events (refused requests, failed logins) are
counted in memory and written in aggregate (:mod:`labelfarm.services.audit_tally`).

The key reaches the database's transactions through :func:`use_key`, called once wherever a
:class:`~labelfarm.db.engine.Database` is made from settings (the app, the CLI). Work run
for an operator at the command line is recorded under their name (:func:`acting_as`).
"""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, NamedTuple

from sqlalchemy import select

from labelfarm.db.engine import Database
from labelfarm.db.tables import audit_head, audit_log
from labelfarm.db.tx import CoreTx, Sql, transaction
from labelfarm.jsonutil import dumps, loads
from labelfarm.services.audit_chain import (
    GENESIS,
    KEYED,
    ROWS_AFTER,
    VerifyResult,
    Walk,
    content,
    keyed_digest,
)

__all__ = ["GENESIS", "VerifyResult", "acting_as", "entries", "record", "use_key", "verify"]

# The engine option carrying the key: every connection of the engine (and the migrations run
# on one) sees it; it is never stored.
KEY_OPTION = "labelfarm_audit_key"
SEAL_ACTION = "audit.keyed"  # the keyed row the upgrade appended on top of unkeyed rows

_operator: ContextVar[str | None] = ContextVar("labelfarm_audit_operator", default=None)


class Head(NamedTuple):
    last_id: int
    hash: str


class UserId(NamedTuple):
    id: int


# the chain's head, locked: audited writes take turns appending
HEAD = Sql("SELECT last_id, hash FROM audit_head WHERE id = 1", row=Head, lock="FOR UPDATE")
HEAD_NOW = Sql("SELECT last_id, hash FROM audit_head WHERE id = 1", row=Head)
USER_NAMED = Sql("SELECT id FROM users WHERE username = :u", row=UserId)


def use_key(db: Database, key: bytes) -> None:
    """Give ``db``'s transactions the audit key (the setting ``audit_key``)."""
    if not key:
        raise ValueError("the audit key is empty")
    db.engine.update_execution_options(**{KEY_OPTION: bytes(key)})


def key_of(tx: CoreTx) -> bytes:
    key: bytes | None = tx.conn.get_execution_options().get(KEY_OPTION)
    if not key:
        raise RuntimeError(
            "no audit key for this database: call labelfarm.services.audit.use_key(db, "
            "settings.resolved_audit_key) once after creating it"
        )
    return key


def login_name() -> str:
    """The shell user's login name: the operator when none is named."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return f"uid:{os.getuid()}"


@contextmanager
def acting_as(operator: str) -> Iterator[None]:
    """Record the rows written meanwhile (in this thread or task) as done by ``operator``, a
    person at the command line: their details carry ``"operator"``, and their actor is the
    labelfarm user of that name, or none if there is no such user (the operator acted, not
    whoever the service would have named)."""
    token = _operator.set(operator)
    try:
        yield
    finally:
        _operator.reset(token)


def record(
    tx: CoreTx,
    *,
    action: str,
    target: str,
    now: float,
    workspace_id: int | None = None,
    actor_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """Append one audit row in the caller's transaction; returns its id."""
    key = key_of(tx)
    operator = _operator.get()
    if operator is not None:
        details = {**(details or {}), "operator": operator}
        user = tx.one(USER_NAMED, {"u": operator})
        actor_id = user.id if user is not None else None
    head = tx.one(HEAD, {})
    last_id, prev_hash = (head.last_id, head.hash) if head else (0, GENESIS)
    row: dict[str, Any] = {
        "id": last_id + 1,
        "ts": now,
        "workspace_id": workspace_id,
        "actor_id": actor_id,
        "action": action,
        "target": target,
        "details": dumps(details or {}),
        "prev_hash": prev_hash,
    }
    row["hash"] = keyed_digest(key, content(row))
    tx.execute(audit_log.insert().values(scheme=KEYED, **row))
    if head is None:
        tx.execute(audit_head.insert().values(id=1, last_id=row["id"], hash=row["hash"]))
    else:
        tx.execute(
            audit_head.update()
            .where(audit_head.c.id == 1)
            .values(last_id=row["id"], hash=row["hash"])
        )
    return last_id + 1


@transaction("read")
def verify(
    tx: CoreTx, *, batch: int = 20_000, anchored: dict[int, str] | None = None
) -> VerifyResult:
    """Walk the whole chain and report every row that does not fit it; ``anchored`` (row
    id → hash, from checked anchors) must still be in it."""
    started = time.perf_counter()
    walk = Walk(key_of(tx), anchored)
    after = 0
    while True:
        rows = tx.rows(ROWS_AFTER, {"after": after, "n": batch})
        if not rows:
            break
        walk.feed(rows)
        after = rows[-1][0]
    head = tx.one(HEAD_NOW, {})
    result = walk.finish((head.last_id, head.hash) if head is not None else None)
    result.seconds = time.perf_counter() - started
    return result


@transaction("read")
def entries(
    tx: CoreTx,
    *,
    workspace_id: int | None = None,
    limit: int = 100,
    before: int | None = None,
) -> list[dict[str, Any]]:
    """The newest entries, optionally of one workspace."""
    q = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if workspace_id is not None:
        q = q.where(audit_log.c.workspace_id == workspace_id)
    if before is not None:
        q = q.where(audit_log.c.id < before)
    out = []
    for row in tx.execute(q).mappings():
        entry = dict(row)
        entry["details"] = loads(entry["details"])
        out.append(entry)
    return out
