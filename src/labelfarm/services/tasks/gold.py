"""Gold: items with a known answer, mixed into the queue blind and scored when answered.

Gold items are never open in the ordinary queue: ``next`` (:mod:`.lease`) mixes them in at
the project's ``gold_rate`` (the task looks like any other), and an annotator still
qualifying gets gold only. Every gold answer is scored by the field types and kept in
``gold_results``, the evidence behind :mod:`.standing` (qualification, pausing); in training
mode the answer and the guidelines come back with the submission's result.
"""

from __future__ import annotations

import random
from typing import Any, NamedTuple

from labelfarm.db.tx import Sql, Tx
from labelfarm.jsonutil import loads
from labelfarm.services.projects import Project
from labelfarm.services.tasks import standing
from labelfarm.services.tasks.openness import NOT_MINE


class GoldItem(NamedTuple):
    id: int
    data: str
    media_sha256: str | None


GOLD_RANGE = Sql(
    "SELECT MIN(id), MAX(id) FROM items WHERE project_id = :p AND is_gold AND status = 'ready'"
)
GOLD_PICK = Sql(
    "SELECT i.id, i.data, i.media_sha256 FROM items i "
    "WHERE i.project_id = :p AND i.is_gold AND i.status = 'ready' AND i.id >= :start "
    f"AND {NOT_MINE} ORDER BY i.id LIMIT :n",
    row=GoldItem,
)
RECORD = Sql(
    "INSERT INTO gold_results (project_id, item_id, user_id, annotation_id, gold_class, score, "
    "qualification, created_at) VALUES (:p, :i, :u, :a, :c, :s, :q, :now)"
)


def pick(tx: Tx, project: Project, user_id: int, k: int, rng: random.Random) -> list[GoldItem]:
    """Up to ``k`` gold items the annotator has not had, from a random start (the caller
    leases them)."""
    if k <= 0:
        return []
    lo, hi = tx.one(GOLD_RANGE, {"p": project.id}) or (None, None)
    if lo is None:
        return []
    start = rng.randint(lo, hi)
    params = {"p": project.id, "u": user_id, "n": k, "start": start}
    rows = tx.rows(GOLD_PICK, params)
    if len(rows) < k and start > lo:
        params.update(start=lo, n=k - len(rows))
        taken = {r.id for r in rows}
        rows += [r for r in tx.rows(GOLD_PICK, params) if r.id not in taken]
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
    tx: Tx, project: Project, user_id: int, answers: list[dict[str, Any]], now: float
) -> dict[int, dict[str, Any]]:
    """Score gold answers, keep the evidence, update the annotator's standing.

    ``answers``: ``{"item_id", "annotation_id", "value", "gold"}`` (JSON texts). Returns
    training feedback per item id when the project is in training mode (else empty).
    """
    current = (
        standing.current(tx, project, user_id, now)
        if project.needs_standing
        else standing.Standing("active")
    )
    qualifying = current.state == "qualifying"
    feedback: dict[int, dict[str, Any]] = {}
    for a in answers:
        gold = loads(a["gold"])
        s, gold_class = score(project, loads(a["value"]), gold)
        tx.run(
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
        standing.update(tx, project, user_id, current, now)
    return feedback
