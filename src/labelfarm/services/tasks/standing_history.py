"""The history of an annotator's standing in a project, and its audit.

Every change of standing (:mod:`.standing`) appends one row to ``standing_events``: the new
state, the reason, the evidence and who made it (a manager, or nobody: a rule of the
project, on a gold answer). Nothing is overwritten: a resume follows the pause it ends, with
the pause's evidence still there.

Changes by hand are audited in their own transaction. Changes by a rule happen on the
submit path, whose transactions cannot write the audit log (it takes a key and the chain's
lock), so they are stored unaudited (``audit_id`` NULL) and :func:`audit_pending` audits
them in a transaction of its own: the annotate routes call it after work that changed a
standing (:func:`pending` tells, in this process), and a server process calls it once
after it starts, for changes a stopped process left unaudited.

Evidence never holds a user id: who acted is the event's ``actor_id``, shown as a role and a
pseudonym (and, except to clients, a name and id).
"""

from __future__ import annotations

import threading
from typing import Any, NamedTuple

from labelfarm.db.tx import CoreTx, Sql, Tx, transaction
from labelfarm.jsonutil import dumps, iso, loads
from labelfarm.services import audit

AUDIT_ACTION = "annotator.standing"
# keys a stored evidence may carry that name a user (rows from before the history was kept)
_IDENTIFYING = frozenset({"set_by"})


class Event(NamedTuple):
    id: int
    state: str
    reason: str
    evidence: str
    created_at: float
    actor_id: int | None
    actor_role: str | None
    actor_pseudonym: str | None
    actor_name: str | None


class Unaudited(NamedTuple):
    id: int
    project_id: int
    workspace_id: int
    user_id: int
    state: str
    reason: str
    evidence: str
    created_at: float


APPEND = Sql(
    "INSERT INTO standing_events (project_id, user_id, state, reason, evidence, actor_id, "
    "created_at, audit_id) VALUES (:p, :u, :state, :reason, :evidence, :actor, :now, :audit) "
    "RETURNING id"
)
HISTORY = Sql(
    "SELECT e.id, e.state, e.reason, e.evidence, e.created_at, e.actor_id, m.role, "
    "u.pseudonym, u.display_name FROM standing_events e "
    "JOIN projects p ON p.id = e.project_id "
    "LEFT JOIN users u ON u.id = e.actor_id "
    "LEFT JOIN memberships m ON m.user_id = e.actor_id AND m.workspace_id = p.workspace_id "
    "WHERE e.project_id = :p AND e.user_id = :u ORDER BY e.id DESC LIMIT :n",
    row=Event,
)
UNAUDITED = Sql(
    "SELECT e.id, e.project_id, p.workspace_id, e.user_id, e.state, e.reason, e.evidence, "
    "e.created_at FROM standing_events e JOIN projects p ON p.id = e.project_id "
    "WHERE e.audit_id IS NULL ORDER BY e.id LIMIT :n",
    row=Unaudited,
    lock="FOR UPDATE OF e",  # two processes auditing at once: one waits, then skips them
)
SET_AUDIT = Sql("UPDATE standing_events SET audit_id = :a WHERE id = :id")

_pending = threading.Event()
_pending.set()  # a process starts by auditing what a stopped one may have left


def append(
    tx: Tx,
    *,
    project_id: int,
    user_id: int,
    state: str,
    reason: str,
    evidence: dict[str, Any],
    actor_id: int | None,
    now: float,
    audit_id: int | None = None,
) -> int:
    """Append a change of standing; a change by a rule (``audit_id`` None) waits for
    :func:`audit_pending`."""
    row = tx.one(
        APPEND,
        {
            "p": project_id,
            "u": user_id,
            "state": state,
            "reason": reason,
            "evidence": dumps(evidence),
            "actor": actor_id,
            "now": now,
            "audit": audit_id,
        },
    )
    if audit_id is None:
        note_pending()
    return int(row[0]) if row else 0


def set_audited(tx: Tx, event_id: int, audit_id: int) -> None:
    tx.run(SET_AUDIT, {"id": event_id, "a": audit_id})


def note_pending() -> None:
    """Have the next check audit again (after a failed :func:`audit_pending`)."""
    _pending.set()


def pending() -> bool:
    """Whether this process made changes by a rule that may wait for their audit."""
    return _pending.is_set()


@transaction("write")
def audit_pending(tx: CoreTx, *, now: float, limit: int = 1000) -> int:
    """Audit the changes of standing made by a rule and not audited yet; how many."""
    _pending.clear()  # a change noted from now on is read here or by the next call
    rows = tx.rows(UNAUDITED, {"n": limit})
    for r in rows:
        audit_id = audit.record(
            tx,
            action=AUDIT_ACTION,
            target=f"user:{r.user_id}",
            now=now,
            workspace_id=r.workspace_id,
            actor_id=None,
            details={
                "project_id": r.project_id,
                "event_id": r.id,
                "by": "rule",
                "to": r.state,
                "reason": r.reason,
                "evidence": loads(r.evidence),
                "at": iso(r.created_at),
            },
        )
        set_audited(tx, r.id, audit_id)
    if len(rows) == limit:
        note_pending()
    return len(rows)


def public_evidence(evidence: Any) -> dict[str, Any]:
    """Evidence as anyone may see it: no user ids."""
    if not isinstance(evidence, dict):
        return {}
    return {k: v for k, v in evidence.items() if k not in _IDENTIFYING}


def history(
    tx: Tx, project_id: int, user_id: int, *, identities: bool, limit: int = 100
) -> list[dict[str, Any]]:
    """The annotator's changes of standing in the project, newest first. Who acted is a
    role and a pseudonym (``None``: a rule); ``identities`` adds their name and user id."""
    out = []
    for e in tx.rows(HISTORY, {"p": project_id, "u": user_id, "n": limit}):
        evidence = public_evidence(loads(e.evidence))
        entry: dict[str, Any] = {
            "state": e.state,
            "reason": e.reason,
            "evidence": evidence,
            "at": iso(e.created_at),
            "by": None,
        }
        if e.actor_id is not None:  # their role then, else now (an instance admin: none)
            role = evidence.get("by_role") or e.actor_role or "admin"
            entry["by"] = {"role": role, "pseudonym": e.actor_pseudonym}
            if identities:
                entry["by"].update(user_id=e.actor_id, display_name=e.actor_name)
        out.append(entry)
    return out
