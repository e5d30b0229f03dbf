"""The audit log: append-only, hash-chained.

Each row's hash covers its own content and the previous row's hash, so editing a row breaks
its hash, deleting a row breaks the chain at the next one, and ``audit_head`` (the newest
id and hash) catches a deleted tail. The database also refuses UPDATE and DELETE on the
table (triggers); the chain is what proves nothing was changed behind that.

Rows are written for logins, imports, exports, role changes and settings changes, never
per annotation (that would put a serialised write on the hot path).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import select

from labelfarm.db.tables import audit_head, audit_log
from labelfarm.db.tx import CoreTx, Sql, transaction
from labelfarm.jsonutil import dumps, loads

GENESIS = "0" * 64


class Head(NamedTuple):
    last_id: int
    hash: str


# the chain's head, locked: audited writes take turns appending
HEAD = Sql("SELECT last_id, hash FROM audit_head WHERE id = 1", row=Head, lock="FOR UPDATE")


def _digest(row: dict[str, Any]) -> str:
    canonical = dumps(
        [
            row["id"],
            repr(float(row["ts"])),
            row["workspace_id"],
            row["actor_id"],
            row["action"],
            row["target"],
            row["details"],
            row["prev_hash"],
        ]
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


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
    head = tx.one(HEAD, {})
    last_id, prev_hash = (head.last_id, head.hash) if head else (0, GENESIS)
    row = {
        "id": last_id + 1,
        "ts": now,
        "workspace_id": workspace_id,
        "actor_id": actor_id,
        "action": action,
        "target": target,
        "details": dumps(details or {}),
        "prev_hash": prev_hash,
    }
    row["hash"] = _digest(row)
    tx.execute(audit_log.insert().values(**row))
    if head is None:
        tx.execute(audit_head.insert().values(id=1, last_id=row["id"], hash=row["hash"]))
    else:
        tx.execute(
            audit_head.update()
            .where(audit_head.c.id == 1)
            .values(last_id=row["id"], hash=row["hash"])
        )
    return last_id + 1


@dataclass
class VerifyResult:
    ok: bool
    n_rows: int
    problems: list[dict[str, Any]] = field(default_factory=list)


@transaction("read")
def verify(tx: CoreTx, *, batch: int = 10_000) -> VerifyResult:
    """Walk the whole chain and report every row that does not fit it."""
    problems: list[dict[str, Any]] = []
    prev_hash, expected_id, n = GENESIS, 1, 0
    last_id = 0
    while True:
        rows = (
            tx.execute(
                select(audit_log)
                .where(audit_log.c.id > last_id)
                .order_by(audit_log.c.id)
                .limit(batch)
            )
            .mappings()
            .all()
        )
        if not rows:
            break
        for row in rows:
            n += 1
            if row["id"] != expected_id:
                problems.append(
                    {"id": expected_id, "problem": f"rows {expected_id}..{row['id'] - 1} missing"}
                )
            if row["prev_hash"] != prev_hash:
                problems.append({"id": row["id"], "problem": "chain broken before this row"})
            if _digest(dict(row)) != row["hash"]:
                problems.append({"id": row["id"], "problem": "row content does not match its hash"})
            prev_hash, expected_id, last_id = row["hash"], row["id"] + 1, row["id"]
    head = tx.execute(select(audit_head).where(audit_head.c.id == 1)).first()
    if head is not None and (head.last_id != last_id or head.hash != prev_hash):
        problems.append({"id": head.last_id, "problem": f"newest rows missing after id {last_id}"})
    if head is None and n:
        problems.append({"id": None, "problem": "audit head is missing"})
    return VerifyResult(ok=not problems, n_rows=n, problems=problems)


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
