"""Gold tasks, qualification, training feedback and annotator standing.

Gold items have a known answer and are never open in the ordinary queue: ``next`` mixes
them in blind at the project's ``gold_rate`` (the task looks like any other). An annotator
of a project with ``qualification_n`` first answers that many gold items (in training mode
the answer and the guidelines come back after each); passing the mark makes the annotator
active, failing it stops their work on the project. Every gold answer is scored by the
field types and kept in ``gold_results``; when the Beta-posterior estimate of an
annotator's accuracy falls below the project's ``accuracy_floor`` they are paused and
listed for a manager, with the evidence.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from labelfarm.db.hot import Hot, Sql
from labelfarm.ml.reliability import beta_accuracy
from labelfarm.services.jsonutil import dumps, loads
from labelfarm.services.projects import NOT_MINE, Project

MIN_GOLD_FOR_PAUSE = 5

GOLD_RANGE = Sql(
    "SELECT MIN(id), MAX(id) FROM items WHERE project_id = :p AND is_gold AND status = 'ready'"
)
_GOLD_PICK = (
    "SELECT i.id, i.data, i.media_sha256 FROM items i "
    "WHERE i.project_id = :p AND i.is_gold AND i.status = 'ready' AND i.id >= :start "
    "AND {not_mine} ORDER BY i.id LIMIT :n"
)
GOLD_PICK = Sql(_GOLD_PICK.format(not_mine=NOT_MINE[0]), _GOLD_PICK.format(not_mine=NOT_MINE[1]))
LEASE_GOLD = Sql(
    "INSERT INTO assignments (project_id, item_id, user_id, state, leased_at, expires_at) "
    "VALUES (:p, :i, :u, 'leased', :now, :exp)"
)
COUNT_GOLD_LEASE = Sql("UPDATE items SET n_leased = n_leased + 1 WHERE id = :i")
STANDING = Sql(
    "SELECT state, reason, evidence FROM annotator_status WHERE project_id = :p AND user_id = :u"
)
NEW_STANDING = Sql(
    "INSERT INTO annotator_status (project_id, user_id, state, reason, evidence, updated_at) "
    "VALUES (:p, :u, :state, '', '{}', :now) ON CONFLICT (project_id, user_id) DO NOTHING"
)
SET_STANDING = Sql(
    "UPDATE annotator_status SET state = :state, reason = :reason, evidence = :evidence, "
    "updated_at = :now WHERE project_id = :p AND user_id = :u"
)
GOLD_TALLY = Sql(
    "SELECT COUNT(*), COALESCE(SUM(score), 0) FROM gold_results "
    "WHERE project_id = :p AND user_id = :u AND qualification = :q"
)
RECORD = Sql(
    "INSERT INTO gold_results (project_id, item_id, user_id, annotation_id, gold_class, score, "
    "qualification, created_at) VALUES (:p, :i, :u, :a, :c, :s, :q, :now)"
)
RECENT_FAILURES = Sql(
    "SELECT item_id, score FROM gold_results WHERE project_id = :p AND user_id = :u "
    "AND score < 1 ORDER BY id DESC LIMIT 10"
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


def standing(hot: Hot, project: Project, user_id: int, now: float) -> Standing:
    """The annotator's standing in the project, created (qualifying or active) on first use."""
    row = hot.one(STANDING, {"p": project.id, "u": user_id})
    if row is None:
        state = "qualifying" if project.qualification_n > 0 else "active"
        hot.run(NEW_STANDING, {"p": project.id, "u": user_id, "state": state, "now": now})
        row = (state, "", "{}")
    result = Standing(row[0], row[1], loads(row[2]))
    if result.state == "qualifying":
        tally = hot.one(GOLD_TALLY, {"p": project.id, "u": user_id, "q": True})
        result.qualification_done = int(tally[0]) if tally else 0
    return result


def pick_gold(
    hot: Hot, project: Project, user_id: int, k: int, now: float, rng: random.Random
) -> list[tuple[Any, ...]]:
    """Lease up to ``k`` gold items the annotator has not had, from a random start."""
    if k <= 0:
        return []
    lo, hi = hot.one(GOLD_RANGE, {"p": project.id, "t": True}) or (None, None)
    if lo is None:
        return []
    start = rng.randint(lo, hi)
    params = {"p": project.id, "t": True, "u": user_id, "n": k, "start": start}
    rows = hot.rows(GOLD_PICK, params)
    if len(rows) < k and start > lo:
        params.update(start=lo, n=k - len(rows))
        rows += [r for r in hot.rows(GOLD_PICK, params) if r[0] not in {x[0] for x in rows}]
    expires = now + project.lease_seconds
    hot.many(
        LEASE_GOLD,
        [{"p": project.id, "i": r[0], "u": user_id, "now": now, "exp": expires} for r in rows],
    )
    for r in rows:
        hot.run(COUNT_GOLD_LEASE, {"i": r[0]})
    return rows


def score(
    project: Project, value: dict[str, Any], gold: dict[str, Any]
) -> tuple[float, str | None]:
    """Mean field score of an answer against gold, and the gold class of the first choice."""
    scores, gold_class = [], None
    for f in project.schema.fields:
        if f.name not in gold:
            continue
        if f.type_name == "choice" and gold_class is None:
            gold_class = str(gold[f.name])
        scores.append(f.score(value[f.name], gold[f.name]) if f.name in value else 0.0)
    return (sum(scores) / len(scores) if scores else 1.0), gold_class


def record_answers(
    hot: Hot, project: Project, user_id: int, answers: list[dict[str, Any]], now: float
) -> dict[int, dict[str, Any]]:
    """Score gold answers, keep the evidence, update the annotator's standing.

    ``answers``: ``{"item_id", "annotation_id", "value", "gold"}`` (JSON texts). Returns
    training feedback per item id when the project is in training mode (else empty).
    """
    current = standing(hot, project, user_id, now) if project.needs_standing else Standing("active")
    qualifying = current.state == "qualifying"
    feedback: dict[int, dict[str, Any]] = {}
    for a in answers:
        gold = loads(a["gold"])
        s, gold_class = score(project, loads(a["value"]), gold)
        hot.run(
            RECORD,
            {
                "p": project.id,
                "i": a["item_id"],
                "u": user_id,
                "a": a["annotation_id"],
                "c": gold_class,
                "s": s,
                "q": qualifying,
                "now": now,
            },
        )
        if project.training:
            feedback[a["item_id"]] = {
                "correct": s >= 0.999,
                "score": round(s, 4),
                "answer": gold,
                "guidelines": project.guidelines,
            }
    if project.needs_standing:
        _update_standing(hot, project, user_id, current, now)
    return feedback


def _tally(hot: Hot, project: Project, user_id: int, qualification: bool) -> tuple[int, float]:
    row = hot.one(GOLD_TALLY, {"p": project.id, "u": user_id, "q": qualification})
    return (int(row[0]), float(row[1])) if row else (0, 0.0)


N_GOLD = Sql("SELECT COUNT(*) FROM items WHERE project_id = :p AND is_gold")


def _update_standing(
    hot: Hot, project: Project, user_id: int, current: Standing, now: float
) -> None:
    if current.state == "qualifying":
        n, total = _tally(hot, project, user_id, True)
        n_gold = hot.one(N_GOLD, {"p": project.id, "t": True})
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
            ""
            if passed
            else (f"qualification score {mean:.0%} below {project.qualification_pass:.0%}")
        )
        _set(hot, project, user_id, "active" if passed else "failed", reason, evidence, now)
        return
    if current.state != "active" or project.accuracy_floor <= 0:
        return
    n_q, s_q = _tally(hot, project, user_id, True)
    n_w, s_w = _tally(hot, project, user_id, False)
    n, s = n_q + n_w, s_q + s_w
    if n < MIN_GOLD_FOR_PAUSE:
        return
    est = beta_accuracy(s, n)
    mean, lower, upper = float(est.mean), float(est.lower), float(est.upper)
    if mean < project.accuracy_floor:
        failures = [
            {"item_id": r[0], "score": round(float(r[1]), 4)}
            for r in hot.rows(RECENT_FAILURES, {"p": project.id, "u": user_id})
        ]
        evidence = {
            "gold_answers": n,
            "accuracy_mean": round(mean, 4),
            "credible_90": [round(lower, 4), round(upper, 4)],
            "floor": project.accuracy_floor,
            "recent_failures": failures,
        }
        _set(
            hot,
            project,
            user_id,
            "paused",
            f"estimated gold accuracy {mean:.0%} below the floor {project.accuracy_floor:.0%}",
            evidence,
            now,
        )


def _set(
    hot: Hot,
    project: Project,
    user_id: int,
    state: str,
    reason: str,
    evidence: dict[str, Any],
    now: float,
) -> None:
    hot.run(
        SET_STANDING,
        {
            "p": project.id,
            "u": user_id,
            "state": state,
            "reason": reason,
            "evidence": dumps(evidence),
            "now": now,
        },
    )
