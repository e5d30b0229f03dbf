"""Gold: items with a known answer, of two kinds, and the scoring of the work done on them.

**Control** items measure. They are never open in the ordinary queue: ``next``
(:mod:`.lease`) mixes them in at the project's ``gold_rate`` (the task looks like any
other), and an annotator in qualification gets them once training is done. Their answer
is never shown. Each control item an annotator was *given* (a lease, a checkout's
included) and then answered or skipped is scored into ``gold_results``, the evidence behind
:mod:`.standing` (qualification, pausing): an answer by the field types, a skip as a miss
(score 0). Work on a gold item never handed to the annotator is stored like any work, but
not scored; only the first decision on an item counts (a correction, or an answer after a
skip, changes no score).

**Training** items teach. They are handed out only to annotators in qualification, in a
project with ``training`` on, before any control item (a batch holds training items only
while any is left to hand out); the answer and the guidelines come back with the
submission. They are not scored: they count only towards the qualification's progress.
"""

from __future__ import annotations

import random
from typing import Any, NamedTuple

from labelfarm.db.tx import Sql, Tx
from labelfarm.jsonutil import loads
from labelfarm.services.projects import Project
from labelfarm.services.tasks import standing
from labelfarm.services.tasks.openness import NOT_MINE

TRAINING, CONTROL = "training", "control"
KINDS = (CONTROL, TRAINING)
# an item's gold kind; gold items from before kinds existed are control items
KIND_OF = "COALESCE(i.gold_kind, 'control')"


class GoldItem(NamedTuple):
    id: int
    data: str
    media_sha256: str | None


class GoldOf(NamedTuple):
    gold: str
    kind: str


GOLD_RANGE = Sql(
    "SELECT MIN(i.id), MAX(i.id) FROM items i WHERE i.project_id = :p AND i.is_gold "
    f"AND i.status = 'ready' AND {KIND_OF} = :kind"
)
GOLD_PICK = Sql(
    "SELECT i.id, i.data, i.media_sha256 FROM items i "
    "WHERE i.project_id = :p AND i.is_gold AND i.status = 'ready' AND i.id >= :start "
    f"AND {KIND_OF} = :kind AND {NOT_MINE} ORDER BY i.id LIMIT :n",
    row=GoldItem,
)
KINDS_OF = Sql(f"SELECT i.id, {KIND_OF} FROM items i WHERE i.id IN :ids")
GOLD_OF = Sql(
    f"SELECT i.gold, {KIND_OF} FROM items i WHERE i.id = :i AND i.project_id = :p AND i.is_gold",
    row=GoldOf,
)
RECORD = Sql(
    "INSERT INTO gold_results (project_id, item_id, user_id, annotation_id, gold_class, score, "
    "qualification, created_at) VALUES (:p, :i, :u, :a, :c, :s, :q, :now)"
)


class Scored(NamedTuple):
    item_id: int
    annotation_id: int | None  # None: skipped
    gold_class: str | None
    score: float


def pick(
    tx: Tx,
    project: Project,
    user_id: int,
    k: int,
    rng: random.Random,
    kind: str = CONTROL,
) -> list[GoldItem]:
    """Up to ``k`` gold items of ``kind`` the annotator has not had, from a random start
    (the caller leases them)."""
    if k <= 0:
        return []
    lo, hi = tx.one(GOLD_RANGE, {"p": project.id, "kind": kind}) or (None, None)
    if lo is None:
        return []
    start = rng.randint(lo, hi)
    params = {"p": project.id, "u": user_id, "n": k, "start": start, "kind": kind}
    rows = tx.rows(GOLD_PICK, params)
    if len(rows) < k and start > lo:
        params.update(start=lo, n=k - len(rows))
        taken = {r.id for r in rows}
        rows += [r for r in tx.rows(GOLD_PICK, params) if r.id not in taken]
    return rows


def pick_for(
    tx: Tx, project: Project, user_id: int, k: int, rng: random.Random, *, qualifying: bool
) -> list[GoldItem]:
    """Up to ``k`` gold items for the annotator: control items; in qualification, in a
    project that trains, training items only while any is left to hand out (so that every
    training answer comes back before the first control item is given)."""
    if qualifying and project.training:
        training = pick(tx, project, user_id, k, rng, TRAINING)
        if training:
            return training
    return pick(tx, project, user_id, k, rng, CONTROL)


def gold_class(project: Project, gold: dict[str, Any]) -> str | None:
    """The gold answer's class for per-class accuracy: its first choice field's value."""
    f = next((f for f in project.schema.fields if f.type_name == "choice" and f.name in gold), None)
    return None if f is None else str(gold[f.name])


def score(
    project: Project, value: dict[str, Any], gold: dict[str, Any]
) -> tuple[float, str | None]:
    """Mean field score of an answer against gold, and the gold class of the first choice."""
    scores = [
        f.score(value[f.name], gold[f.name]) if f.name in value else 0.0
        for f in project.schema.fields
        if f.name in gold
    ]
    return (sum(scores) / len(scores) if scores else 1.0), gold_class(project, gold)


def record_answers(
    tx: Tx, project: Project, user_id: int, answers: list[dict[str, Any]], now: float
) -> dict[int, dict[str, Any]]:
    """Score answers to gold items the annotator was given, keep the evidence, update the
    annotator's standing.

    ``answers``: ``{"item_id", "annotation_id", "value", "gold"}`` (JSON texts), each the
    first answer to an item handed to the annotator (the caller checks). Returns feedback
    (the answer, the guidelines) per training item id; control answers get none.
    """
    kinds = dict(tx.rows(KINDS_OF, {"ids": [a["item_id"] for a in answers]}))
    feedback: dict[int, dict[str, Any]] = {}
    scored: list[Scored] = []
    for a in answers:
        gold = loads(a["gold"])
        s, cls = score(project, loads(a["value"]), gold)
        if kinds.get(a["item_id"]) == TRAINING:
            feedback[a["item_id"]] = {
                "correct": s >= 0.999,
                "score": round(s, 4),
                "answer": gold,
                "guidelines": project.guidelines,
            }
        else:
            scored.append(Scored(a["item_id"], a["annotation_id"], cls, s))
    _record(tx, project, user_id, scored, now)
    return feedback


def record_skip(tx: Tx, project: Project, user_id: int, item_id: int, now: float) -> None:
    """A gold item the annotator was given and skipped: a miss if it is a control item
    (a training item skipped counts only as done). Nothing for other items."""
    row = tx.one(GOLD_OF, {"i": item_id, "p": project.id})
    if row is None:
        return
    scored = []
    if row.kind != TRAINING:
        scored.append(Scored(item_id, None, gold_class(project, loads(row.gold)), 0.0))
    _record(tx, project, user_id, scored, now)


def _record(tx: Tx, project: Project, user_id: int, scored: list[Scored], now: float) -> None:
    """Keep the scores (marked as qualification answers while the annotator qualifies) and
    update the annotator's standing."""
    current = (
        standing.current(tx, project, user_id, now)
        if project.needs_standing
        else standing.Standing("active")
    )
    qualifying = current.state == "qualifying"
    if scored:
        tx.many(
            RECORD,
            [
                {
                    "p": project.id,
                    "i": s.item_id,
                    "u": user_id,
                    "a": s.annotation_id,
                    "c": s.gold_class,
                    "s": s.score,
                    "q": qualifying,
                    "now": now,
                }
                for s in scored
            ],
        )
    if project.needs_standing:
        standing.update(tx, project, user_id, current, now)
