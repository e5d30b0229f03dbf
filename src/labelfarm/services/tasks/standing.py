"""An annotator's standing in a project: qualifying, active, paused or failed.

In a project with ``qualification_n`` or ``training`` an annotator first qualifies: they
work through the project's training items (with ``training`` on; answers shown, not
scored), then answer ``qualification_n`` control gold items; passing the mark makes them
active, failing it stops their work on the project (a project that only trains lets them
start once training is done). When the Beta-posterior estimate of an active annotator's
control gold accuracy falls below the project's ``accuracy_floor`` they are paused, with the
evidence, and listed for a manager, who may resume them (or pause someone) by hand, audited.
What annotators see of their own standing is :mod:`.standing_summary`. Every change is
kept in the annotator's history and audited (:mod:`.standing_history`); the evidence names
no user (``kind``: ``qualification``, ``accuracy_floor`` or ``manual``, with the role of the
manager, who is the history's ``actor``).
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
from labelfarm.services.tasks import standing_history

MIN_GOLD_FOR_PAUSE = 5
MAX_REASON = 2000  # characters of a manager's reason


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
# gold items of each kind (NULL: from before kinds, control)
N_GOLD = Sql(
    "SELECT COALESCE(gold_kind, 'control'), COUNT(*) FROM items "
    "WHERE project_id = :p AND is_gold AND status = 'ready' GROUP BY COALESCE(gold_kind, 'control')"
)
# training items the annotator is done with: answered, skipped, or let expire
TRAINING_DONE = Sql(
    "SELECT COUNT(*) FROM assignments a JOIN items i ON i.id = a.item_id "
    "WHERE a.project_id = :p AND a.user_id = :u AND a.state <> 'leased' "
    "AND i.is_gold AND i.gold_kind = 'training'"
)


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
    qualification_done: int = 0  # while qualifying: training and control items done
    qualification_of: int = 0  # ... of this many
    #: what the annotator may see of their measured quality (:mod:`.standing_summary`)
    quality: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """What the annotator sees: state, reason, qualification progress, quality band."""
        qualifying = self.state == "qualifying"
        return {
            "state": self.state,
            "reason": self.reason or None,
            "qualification": (
                {"done": self.qualification_done, "of": self.qualification_of}
                if qualifying
                else None
            ),
            "quality": self.quality,
            "reason_key": self.reason_key,
        }

    @property
    def reason_key(self) -> str | None:
        """The catalogue key of a rule's reason (the page says it in the reader's language);
        None for a manager's reason, shown in their own words."""
        kind = self.evidence.get("kind") if isinstance(self.evidence, dict) else None
        if kind in ("accuracy_floor", "qualification") and self.state != "qualifying":
            return f"standing.reason.{kind}.{self.state}"
        return None


class Progress(NamedTuple):
    """Where a qualification stands: training items done of all, control answers of needed."""

    training_done: int
    training_of: int
    control: Tally
    control_of: int

    @property
    def done(self) -> int:
        return self.training_done + self.control.n

    @property
    def of(self) -> int:
        return self.training_of + self.control_of

    @property
    def complete(self) -> bool:
        return self.training_done >= self.training_of and self.control.n >= self.control_of


def first_state(project: Project) -> str:
    """The standing of an annotator new to the project."""
    return "qualifying" if project.qualification_n > 0 or project.training else "active"


def progress(tx: Tx, project: Project, user_id: int) -> Progress:
    """How far the annotator is in the qualification. Control answers needed: the
    project's ``qualification_n``, or fewer when it has fewer control items (but at least
    one; none yet: the annotator waits)."""
    n_of = dict(tx.rows(N_GOLD, {"p": project.id}))
    training_of = int(n_of.get("training", 0)) if project.training else 0
    training_done = 0
    if training_of:
        row = tx.one(TRAINING_DONE, {"p": project.id, "u": user_id})
        training_done = min(int(row[0]) if row else 0, training_of)
    n_control = int(n_of.get("control", 0))
    control_of = min(project.qualification_n, n_control or project.qualification_n)
    return Progress(training_done, training_of, _tally(tx, project, user_id, True), control_of)


def current(tx: Tx, project: Project, user_id: int, now: float) -> Standing:
    """The annotator's standing in the project, created (qualifying or active) on first use;
    a qualification with nothing left to do (a project that trains, without training
    items) ends here."""
    row = tx.one(STANDING, {"p": project.id, "u": user_id})
    if row is None:
        state = first_state(project)
        new = {"p": project.id, "u": user_id, "state": state, "reason": "", "evidence": "{}"}
        tx.run(NEW_STANDING, {**new, "now": now})
        row = StandingRow(state, "", "{}")
    result = Standing(row.state, row.reason, loads(row.evidence))
    if result.state == "qualifying":
        done = progress(tx, project, user_id)
        if done.complete:
            return _finish_qualification(tx, project, user_id, done, now)
        result.qualification_done, result.qualification_of = done.done, done.of
    return result


def _tally(tx: Tx, project: Project, user_id: int, qualification: bool) -> Tally:
    row = tx.one(GOLD_TALLY, {"p": project.id, "u": user_id, "q": qualification})
    return Tally(int(row.n), float(row.total)) if row else Tally(0, 0.0)


def update(tx: Tx, project: Project, user_id: int, before: Standing, now: float) -> None:
    """After new gold answers: finish a qualification, or pause an annotator whose
    estimated accuracy fell below the floor."""
    if before.state == "qualifying":
        done = progress(tx, project, user_id)
        if done.complete:
            _finish_qualification(tx, project, user_id, done, now)
    elif before.state == "active" and project.accuracy_floor > 0:
        _pause_if_below_floor(tx, project, user_id, now)


def _finish_qualification(
    tx: Tx, project: Project, user_id: int, done: Progress, now: float
) -> Standing:
    """Pass or fail a complete qualification (a training-only one passes)."""
    n, total = done.control
    mean = total / n if n else 1.0
    passed = mean >= project.qualification_pass
    evidence: dict[str, Any] = {
        "kind": "qualification",
        "previous": "qualifying",
        "training_items": done.training_done,
        "qualification_answers": n,
        "mean_score": round(mean, 4),
        "pass_mark": project.qualification_pass,
    }
    reason = (
        "" if passed else f"qualification score {mean:.0%} below {project.qualification_pass:.0%}"
    )
    state = "active" if passed else "failed"
    _set(tx, project.id, user_id, state, reason, evidence, now)
    return Standing(state, reason, evidence)


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
        "kind": "accuracy_floor",
        "previous": "active",
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
    *,
    actor_id: int | None = None,
    audit_id: int | None = None,
) -> int:
    """Set a standing, creating its row if the annotator has none yet, and append it to the
    history (a change by a rule, ``actor_id`` None, waits there for its audit); the
    event's id."""
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
    return standing_history.append(
        tx,
        project_id=project_id,
        user_id=user_id,
        state=state,
        reason=reason,
        evidence=evidence,
        actor_id=actor_id,
        now=now,
        audit_id=audit_id,
    )


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
    return [{**r, "evidence": standing_history.public_evidence(loads(r["evidence"]))} for r in rows]


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
    actor_role: str | None = None,
) -> dict[str, Any]:
    """Resume a paused annotator, or pause one, with a reason (audited). The history keeps
    what came before; the evidence names the actor's role (``actor_role``), never their id."""
    if state not in ("active", "paused"):
        raise InvalidInput("state must be 'active' or 'paused'", [{"field": "state"}])
    if len(reason) > MAX_REASON:
        raise InvalidInput(
            f"the reason is text of at most {MAX_REASON} characters", [{"field": "reason"}]
        )
    if tx.one(MEMBER_OF_PROJECT, {"p": project_id, "u": user_id}) is None:
        raise NotFound(f"user {user_id} is not a member of this project's workspace")
    standing_history.audit_pending(tx, now=now)  # what a rule changed before comes first
    old = tx.one(STANDING, {"p": project_id, "u": user_id})
    evidence = {
        "kind": "manual",
        "by_role": actor_role or "admin",
        "previous": old.state if old else None,
    }
    audit_id = audit.record(
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
    _set(
        tx, project_id, user_id, state, reason, evidence, now, actor_id=actor_id, audit_id=audit_id
    )
    return {"project_id": project_id, "user_id": user_id, "state": state}
