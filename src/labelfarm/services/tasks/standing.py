"""An annotator's standing in a project: qualifying, active, paused or failed.

In a project with ``qualification_n`` an annotator first answers that many gold items;
passing the mark makes them active, failing it stops their work on the project. When the
Beta-posterior estimate of an active annotator's gold accuracy falls below the project's
``accuracy_floor`` they are paused, with the evidence, and listed for a manager, who may
resume them (or pause someone) by hand, audited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from labelfarm.db.tx import CoreTx, Sql, Tx, transaction
from labelfarm.errors import InvalidInput, NotFound
from labelfarm.jsonutil import dumps, loads
from labelfarm.ml.reliability import beta_accuracy
from labelfarm.services import audit
from labelfarm.services.projects import Project

MIN_GOLD_FOR_PAUSE = 5


class StandingRow(NamedTuple):
    state: str
    reason: str
    evidence: str


class Tally(NamedTuple):
    n: int
    total: float


STANDING = Sql(
    "SELECT state, reason, evidence FROM annotator_status WHERE project_id = :p AND user_id = :u",
    row=StandingRow,
)
NEW_STANDING = Sql(
    "INSERT INTO annotator_status (project_id, user_id, state, reason, evidence, updated_at) "
    "VALUES (:p, :u, :state, :reason, :evidence, :now) "
    "ON CONFLICT (project_id, user_id) DO NOTHING"
)
SET_STANDING = Sql(
    "UPDATE annotator_status SET state = :state, reason = :reason, evidence = :evidence, "
    "updated_at = :now WHERE project_id = :p AND user_id = :u"
)
GOLD_TALLY = Sql(
    "SELECT COUNT(*), COALESCE(SUM(score), 0) FROM gold_results "
    "WHERE project_id = :p AND user_id = :u AND qualification = :q",
    row=Tally,
)
N_GOLD = Sql("SELECT COUNT(*) FROM items WHERE project_id = :p AND is_gold")


class Failure(NamedTuple):
    item_id: int
    score: float


RECENT_FAILURES = Sql(
    "SELECT item_id, score FROM gold_results WHERE project_id = :p AND user_id = :u "
    "AND score < 1 ORDER BY id DESC LIMIT 10",
    row=Failure,
)


@dataclass
class Standing:
    state: str  # active | qualifying | paused | failed
    reason: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    qualification_done: int = 0

    def to_dict(self, project: Project) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state}
        if self.reason:
            out["reason"] = self.reason
        if self.state == "qualifying":
            out["qualification"] = {"done": self.qualification_done, "of": project.qualification_n}
        return out


def current(tx: Tx, project: Project, user_id: int, now: float) -> Standing:
    """The annotator's standing in the project, created (qualifying or active) on first use."""
    row = tx.one(STANDING, {"p": project.id, "u": user_id})
    if row is None:
        state = "qualifying" if project.qualification_n > 0 else "active"
        new = {"p": project.id, "u": user_id, "state": state, "reason": "", "evidence": "{}"}
        tx.run(NEW_STANDING, {**new, "now": now})
        row = StandingRow(state, "", "{}")
    result = Standing(row.state, row.reason, loads(row.evidence))
    if result.state == "qualifying":
        result.qualification_done = _tally(tx, project, user_id, True).n
    return result


def _tally(tx: Tx, project: Project, user_id: int, qualification: bool) -> Tally:
    row = tx.one(GOLD_TALLY, {"p": project.id, "u": user_id, "q": qualification})
    return Tally(int(row.n), float(row.total)) if row else Tally(0, 0.0)


def update(tx: Tx, project: Project, user_id: int, before: Standing, now: float) -> None:
    """After new gold answers: finish a qualification, or pause an annotator whose
    estimated accuracy fell below the floor."""
    if before.state == "qualifying":
        _finish_qualification(tx, project, user_id, now)
    elif before.state == "active" and project.accuracy_floor > 0:
        _pause_if_below_floor(tx, project, user_id, now)


def _finish_qualification(tx: Tx, project: Project, user_id: int, now: float) -> None:
    n, total = _tally(tx, project, user_id, True)
    n_gold = tx.one(N_GOLD, {"p": project.id})
    needed = min(project.qualification_n, int(n_gold[0]) if n_gold else 0)
    if n < max(needed, 1):
        return
    mean = total / n if n else 0.0
    passed = mean >= project.qualification_pass
    evidence: dict[str, Any] = {
        "qualification_answers": n,
        "mean_score": round(mean, 4),
        "pass_mark": project.qualification_pass,
    }
    reason = (
        "" if passed else f"qualification score {mean:.0%} below {project.qualification_pass:.0%}"
    )
    _set(tx, project.id, user_id, "active" if passed else "failed", reason, evidence, now)


def _pause_if_below_floor(tx: Tx, project: Project, user_id: int, now: float) -> None:
    n_q, s_q = _tally(tx, project, user_id, True)
    n_w, s_w = _tally(tx, project, user_id, False)
    n, s = n_q + n_w, s_q + s_w
    if n < MIN_GOLD_FOR_PAUSE:
        return
    est = beta_accuracy(s, n)
    mean, lower, upper = float(est.mean), float(est.lower), float(est.upper)
    if mean >= project.accuracy_floor:
        return
    failures = [
        {"item_id": r.item_id, "score": round(float(r.score), 4)}
        for r in tx.rows(RECENT_FAILURES, {"p": project.id, "u": user_id})
    ]
    evidence = {
        "gold_answers": n,
        "accuracy_mean": round(mean, 4),
        "credible_90": [round(lower, 4), round(upper, 4)],
        "floor": project.accuracy_floor,
        "recent_failures": failures,
    }
    reason = f"estimated gold accuracy {mean:.0%} below the floor {project.accuracy_floor:.0%}"
    _set(tx, project.id, user_id, "paused", reason, evidence, now)


def _set(
    tx: Tx,
    project_id: int,
    user_id: int,
    state: str,
    reason: str,
    evidence: dict[str, Any],
    now: float,
) -> None:
    """Set a standing, creating its row if the annotator has none yet."""
    params = {
        "p": project_id,
        "u": user_id,
        "state": state,
        "reason": reason,
        "evidence": dumps(evidence),
        "now": now,
    }
    tx.run(NEW_STANDING, params)
    tx.run(SET_STANDING, params)


# -- for managers -----------------------------------------------------------------------------
LIST_STANDING = Sql(
    "SELECT s.user_id, u.pseudonym, u.display_name, s.state, s.reason, s.evidence, s.updated_at "
    "FROM annotator_status s JOIN users u ON u.id = s.user_id WHERE s.project_id = :p "
    "ORDER BY s.state, u.pseudonym"
)
MEMBER_OF_PROJECT = Sql(
    "SELECT m.role FROM memberships m JOIN projects p ON p.workspace_id = m.workspace_id "
    "WHERE p.id = :p AND m.user_id = :u"
)
_LISTED = ("user_id", "pseudonym", "display_name", "state", "reason", "evidence", "updated_at")


@transaction("read")
def list_standing(tx: Tx, project_id: int) -> list[dict[str, Any]]:
    """Each annotator's standing in the project (qualifying, active, paused, failed)."""
    rows = [dict(zip(_LISTED, r, strict=True)) for r in tx.rows(LIST_STANDING, {"p": project_id})]
    return [{**r, "evidence": loads(r["evidence"])} for r in rows]


@transaction("write")
def set_standing(
    tx: CoreTx,
    *,
    project_id: int,
    user_id: int,
    state: str,
    reason: str,
    now: float,
    actor_id: int | None,
    workspace_id: int | None,
) -> dict[str, Any]:
    """Resume a paused annotator, or pause one, with a reason (audited)."""
    if state not in ("active", "paused"):
        raise InvalidInput("state must be 'active' or 'paused'", [{"field": "state"}])
    if tx.one(MEMBER_OF_PROJECT, {"p": project_id, "u": user_id}) is None:
        raise NotFound(f"user {user_id} is not a member of this project's workspace")
    old = tx.one(STANDING, {"p": project_id, "u": user_id})
    evidence = {"set_by": actor_id, "previous": old.state if old else None}
    _set(tx, project_id, user_id, state, reason, evidence, now)
    audit.record(
        tx,
        action="annotator.standing",
        target=f"user:{user_id}",
        now=now,
        workspace_id=workspace_id,
        actor_id=actor_id,
        details={
            "project_id": project_id,
            "from": evidence["previous"],
            "to": state,
            "reason": reason,
        },
    )
    return {"project_id": project_id, "user_id": user_id, "state": state}
