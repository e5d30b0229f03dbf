"""Auto-accept: the model labels the items it is sure of, with a precision guarantee.

For a project with a precision target (``auto_accept_target`` > 0) and a promoted model
version, the ``auto_accept`` job (:mod:`labelfarm.jobs.auto_accept_jobs`):

1. takes the evidence: the held-out items (:func:`labelfarm.services.models.training.in_held_out`,
   drawn uniformly at random by a hash of the item, never by a sampler, never trained on)
   with a final human label for the project's loop field (its first ``choice`` field the
   version predicts), and the promoted version's class probabilities on them
   (:func:`evidence_items`);
2. finds a threshold per class (:func:`labelfarm.ml.auto_accept.search_thresholds`: fixed
   sequence testing of the Clopper-Pearson lower bound, from high to low) and records them
   (:func:`record_thresholds`; the previous run's become ``superseded``);
3. applies them (:func:`apply_page`) to the open items no one has labelled, leased or
   reviewed, that hold model outputs of the promoted version (``model_outputs``): an item
   whose predicted class's probability reaches that class's threshold is labelled by the
   model (``auto_labels``) and closed, except a share ``spot_check_share`` of them (fixed per
   item by a hash) that stays open, blind, for humans to label: spot checks
   (:mod:`labelfarm.services.auto_accept_spot` compares them and withdraws a threshold they
   prove wrong). Held-out items are never auto-labelled.

A closed auto-labelled item is closed the way a review decision closes an item
(``items.is_reviewed``, which the queue's openness rule reads, :mod:`.tasks.openness`): no
counter changes, and recomputing openness keeps it closed. Withdrawing its threshold clears
the flag (unless a reviewer decided the item since) and recomputes openness.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from labelfarm.db.tx import CoreTx, Sql, transaction
from labelfarm.ml.auto_accept import ClassThreshold, accepted_mask
from labelfarm.schema import FieldType
from labelfarm.services import audit
from labelfarm.services.auto_accept_labels import ACCEPTED, SPOT_CHECK
from labelfarm.services.models import outputs, training
from labelfarm.services.projects import Project

PAGE = 1000  # model outputs applied per write transaction
ACTIVE, SUPERSEDED, WITHDRAWN, NONE = "active", "superseded", "withdrawn", "none"
APPLIED = (ACTIVE, SUPERSEDED)  # thresholds whose labels stand (and spot checks update)


def in_spot_check(project_id: int, item_id: int, share: float) -> bool:
    """Whether an item the model labels is left to humans as a spot check: a fixed function
    of the item (a hash below ``share``), independent of the held-out hash."""
    digest = hashlib.sha256(f"labelfarm spot-check v1:{project_id}:{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < share * 2.0**64


# -- the evidence ------------------------------------------------------------------------------
@transaction("read")
def evidence_items(
    tx: CoreTx, project: Project, fields: list[FieldType], field: str, trained: set[int]
) -> list[tuple[int, int]]:
    """The evidence: ``(item_id, class index)`` of the held-out items with a final human label
    for ``field`` (never gold: chosen, not drawn; never an item the version trained on)."""
    options = list(getattr(next(f for f in fields if f.name == field), "options", ()))
    out = []
    for e in training.split(tx, project, fields).evaluate:
        value = e.label.get(field)
        if e.source == training.GOLD or e.item_id in trained or value not in options:
            continue
        out.append((e.item_id, options.index(value)))
    return out


# -- the thresholds ----------------------------------------------------------------------------
class ThresholdRow(NamedTuple):
    id: int
    project_id: int
    version: int
    field: str
    option: str
    target: float
    threshold: float | None
    n_evidence: int
    n_correct: int
    lower_bound: float
    spot_n: int
    spot_correct: int
    state: str
    created_at: float
    updated_at: float


_THRESHOLD_COLUMNS = (
    "id, project_id, version, field, option, target, threshold, n_evidence, n_correct, "
    "lower_bound, spot_n, spot_correct, state, created_at, updated_at"
)
SUPERSEDE = Sql(
    "UPDATE auto_thresholds SET state = CASE WHEN state = 'active' THEN 'superseded' "
    "ELSE state END, updated_at = :now WHERE project_id = :p AND state IN ('active', 'none')"
)
DROP_NONE = Sql("DELETE FROM auto_thresholds WHERE project_id = :p AND state = 'none'")
INSERT_THRESHOLD = Sql(
    "INSERT INTO auto_thresholds (project_id, job_id, version, field, option, target, "
    "threshold, n_evidence, n_correct, lower_bound, spot_n, spot_correct, state, created_at, "
    "updated_at) VALUES (:p, :job, :v, :f, :o, :target, :t, :n, :k, :lower, 0, 0, :state, "
    f":now, :now) RETURNING {_THRESHOLD_COLUMNS}",
    row=ThresholdRow,
)
THRESHOLDS = Sql(
    f"SELECT {_THRESHOLD_COLUMNS} FROM auto_thresholds WHERE project_id = :p "
    "AND state IN :states ORDER BY id",
    row=ThresholdRow,
)


@transaction("write")
def record_thresholds(
    tx: CoreTx,
    project: Project,
    *,
    version: int,
    field: str,
    options: Sequence[str],
    found: Sequence[ClassThreshold],
    target: float,
    job_id: int | None,
    now: float,
) -> list[ThresholdRow]:
    """Store a run's thresholds, one row per class (state ``none`` where the evidence was too
    thin); the previous run's active ones become ``superseded`` (their labels stand)."""
    tx.run(DROP_NONE, {"p": project.id})
    tx.run(SUPERSEDE, {"p": project.id, "now": now})
    rows = []
    for c in found:
        row = tx.one(
            INSERT_THRESHOLD,
            {
                "p": project.id,
                "job": job_id,
                "v": version,
                "f": field,
                "o": options[c.cls],
                "target": target,
                "t": c.threshold,
                "n": c.n,
                "k": c.correct,
                "lower": round(c.lower, 6),
                "state": ACTIVE if c.threshold is not None else NONE,
                "now": now,
            },
        )
        assert row is not None
        rows.append(row)
    return rows


def thresholds(tx: CoreTx, project_id: int, states: Sequence[str]) -> list[ThresholdRow]:
    return tx.rows(THRESHOLDS, {"p": project_id, "states": list(states)})


# -- applying them -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """What a run applies: the promoted version, its loop field and options, and per class
    index the active threshold row (classes without one are absent)."""

    version: int
    field: str
    options: tuple[str, ...]
    rows: dict[int, ThresholdRow]


# open, never labelled, leased or reviewed, not gold, not auto-labelled before
FREE = Sql(
    "SELECT i.id FROM items i WHERE i.project_id = :p AND i.id IN :ids AND i.is_open "
    "AND NOT i.is_gold AND NOT i.is_reviewed AND i.n_leased = 0 AND i.n_submitted = 0 "
    "AND i.status = 'ready' "
    "AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = i.id) "
    "AND NOT EXISTS (SELECT 1 FROM reviews r WHERE r.item_id = i.id) "
    "AND NOT EXISTS (SELECT 1 FROM auto_labels l WHERE l.item_id = i.id)"
)
# closed as a decision closes an item; the counters untouched (a lease taken since: skipped)
CLOSE = Sql(
    "UPDATE items SET is_reviewed = true, is_open = false WHERE id IN :ids AND is_open "
    "AND n_leased = 0 AND n_submitted = 0 RETURNING id"
)
INSERT_LABEL = Sql(
    "INSERT INTO auto_labels (project_id, item_id, threshold_id, version, field, value, "
    "confidence, state, created_at, updated_at) "
    "VALUES (:p, :i, :t, :v, :f, :value, :c, :state, :now, :now)"
)


class Applied(NamedTuple):
    after: int | None  # the last item id read (None: the end)
    accepted: int
    spot_checks: int


@transaction("write")
def apply_page(
    tx: CoreTx, project: Project, plan: Plan, *, after: int, now: float, limit: int = PAGE
) -> Applied:
    """Apply the plan to the next page of open items' model outputs (by item id)."""
    page = outputs.outputs_page(tx, project.id, after=after, limit=limit, open_only=True)
    if not page:
        return Applied(None, 0, 0)
    chosen = [
        o
        for o in page
        if o.version == plan.version
        and o.field == plan.field
        and len(o.proba) == len(plan.options)
        and not training.in_held_out(project.id, o.item_id, project.holdout_share)
    ]
    bars = {c: float(r.threshold) for c, r in plan.rows.items() if r.threshold is not None}
    proba = np.stack([o.proba for o in chosen]) if chosen else np.zeros((0, len(plan.options)))
    keep = accepted_mask(proba, bars)
    wanted = {o.item_id: p for o, p, k in zip(chosen, proba, keep, strict=True) if k}
    free = (
        {r[0] for r in tx.rows(FREE, {"p": project.id, "ids": sorted(wanted)})} if wanted else set()
    )
    spot = {i for i in free if in_spot_check(project.id, i, project.spot_check_share)}
    closing = sorted(free - spot)
    closed = {r[0] for r in tx.rows(CLOSE, {"ids": closing})} if closing else set()
    labels = []
    for item in sorted(closed | spot):
        p = wanted[item]
        cls = int(p.argmax())
        labels.append(
            {
                "p": project.id,
                "i": item,
                "t": plan.rows[cls].id,
                "v": plan.version,
                "f": plan.field,
                "value": plan.options[cls],
                "c": round(float(p[cls]), 6),
                "state": SPOT_CHECK if item in spot else ACCEPTED,
                "now": now,
            }
        )
    if labels:
        tx.many(INSERT_LABEL, labels)
    return Applied(page[-1].item_id, len(closed), len(spot))


@transaction("write")
def record_run(tx: CoreTx, project: Project, summary: dict[str, Any], *, now: float) -> None:
    """The audit log's row of a run: its thresholds and what it labelled."""
    audit.record(
        tx,
        action="auto_accept.run",
        target=f"project:{project.id}",
        now=now,
        workspace_id=project.workspace_id,
        details={"project_id": project.id, **summary},
    )
