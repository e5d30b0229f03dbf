"""Correction rounds: a manager asks the queue to serve, for a budget of new labels, the items
the model confuses for one pair of options of the loop field.

**Opening** a round (:func:`open_round`) needs a promoted, ready model version; the field is
the loop field (:func:`labelfarm.services.models.training.loop_field`). A project has at most
one open round. A round steers the queue through the ``score`` ordering; a project on another
ordering is **switched to ``score``** (a settings change, audited like any other; it stays
after the round). Opening

* pins the items the model already got wrong: labelled items whose final label is a or b and
  whose model output says the other one (:mod:`.correction_rounds_items`), at most half the
  budget, leaving out held-out items (their labels are the evaluation's evidence and must not
  depend on what the model says), reviewed items (a reviewer's decision is final) and gold.
  A closed one is reopened for one more label: it gives up one place in its counter
  (``n_submitted``), the mechanism :mod:`labelfarm.services.tasks.relabel` uses, but keeps
  its labels, so it ends with one label more than the overlap; annotators who labelled it
  never get it again;
* queues the ``score`` job, which asks :func:`round_sampling` how to score: the
  ``confusion_pair`` sampler on the pair, with the pinned items above everything.

**Closing**: when the round's budget of new labels is spent (labels submitted in the project
since it opened, gold left out: :func:`close_spent_rounds`, run by the periodic ``refit``
job and whenever rounds are listed) or when a manager closes it (:func:`close_round`). On
close, the ``score`` job is queued again (the queue goes back to the project's sampler) and,
unless the round was opened with ``train_after: false``, a ``train`` job of the starting
version's predictor, parameters and fields with ``then: promote_and_predict``: the
corrections train the next version. Opening and closing are audited.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from labelfarm.db.tx import CoreTx, Sql, transaction
from labelfarm.errors import Conflict, InvalidInput, NotFound
from labelfarm.jsonutil import dumps, iso, loads
from labelfarm.services import audit, job_queue
from labelfarm.services.correction_rounds_items import judged_items
from labelfarm.services.models import versions
from labelfarm.services.models.training import in_held_out, loop_field
from labelfarm.services.projects import Project, load_project, update_settings
from labelfarm.services.tasks.openness import BUMP_ITEM

MAX_BUDGET = 100_000
MAX_PINNED = 1_000
SCORE_ORDERING = "score"


class RoundSampling(NamedTuple):
    """How an open correction round wants the project's open items scored."""

    field: str  # the choice field of the pair
    pair: tuple[int, int]  # the two classes, as option indexes of that field
    pinned: tuple[int, ...]  # item ids served first (the model got them wrong)


class Round(NamedTuple):
    id: int
    project_id: int
    field: str
    option_a: str
    option_b: str
    budget: int
    state: str
    from_version: int
    pinned: str
    after_annotation: int
    labels_spent: int
    train_after: bool
    opened_by: int | None
    opened_at: float
    closed_by: int | None
    closed_at: float | None
    closed_reason: str | None


_COLUMNS = (
    "id, project_id, field, option_a, option_b, budget, state, from_version, pinned, "
    "after_annotation, labels_spent, train_after, opened_by, opened_at, closed_by, closed_at, "
    "closed_reason"
)
OPEN_ROUND = Sql(
    f"SELECT {_COLUMNS} FROM correction_rounds WHERE project_id = :p AND state = 'open'",
    row=Round,
)
ONE = Sql(f"SELECT {_COLUMNS} FROM correction_rounds WHERE project_id = :p AND id = :id", row=Round)
ALL = Sql(
    f"SELECT {_COLUMNS} FROM correction_rounds WHERE project_id = :p ORDER BY id DESC LIMIT :n",
    row=Round,
)
OPEN_ANYWHERE = Sql("SELECT DISTINCT project_id FROM correction_rounds WHERE state = 'open'")
INSERT = Sql(
    "INSERT INTO correction_rounds (project_id, field, option_a, option_b, budget, state, "
    "from_version, pinned, after_annotation, labels_spent, train_after, opened_by, opened_at) "
    "VALUES (:p, :f, :a, :b, :budget, 'open', :v, :pinned, :after, 0, :train, :by, :now) "
    "RETURNING id"
)
CLOSE = Sql(
    "UPDATE correction_rounds SET state = 'closed', labels_spent = :spent, closed_by = :by, "
    "closed_at = :now, closed_reason = :reason WHERE id = :id AND state = 'open'"
)
LABELS_SINCE = Sql(
    "SELECT COUNT(*) FROM annotations a JOIN items i ON i.id = a.item_id "
    "WHERE a.project_id = :p AND a.id > :after AND a.excluded IS NULL AND i.is_gold = false"
)
NEWEST_ANNOTATION = Sql("SELECT COALESCE(MAX(id), 0) FROM annotations WHERE project_id = :p")
STILL_OPEN = Sql("SELECT id FROM items WHERE id IN :ids AND is_open ORDER BY id")
LOCK_PROJECT = Sql("SELECT id FROM projects WHERE id = :p", lock="FOR UPDATE")


def labels_since(tx: CoreTx, project_id: int, after: int) -> int:
    """Labels submitted in the project after its annotation ``after`` (gold left out)."""
    row = tx.one(LABELS_SINCE, {"p": project_id, "after": after})
    return int(row[0]) if row else 0


def round_sampling(tx: CoreTx, project_id: int) -> RoundSampling | None:
    """The open round's sampling for the project, or None when no round is open (or its
    budget is spent, or the schema no longer has its pair)."""
    found = tx.one(OPEN_ROUND, {"p": project_id})
    if found is None or labels_since(tx, project_id, found.after_annotation) >= found.budget:
        return None
    project = load_project(tx, project_id)
    options = list(getattr(project.schema.by_name.get(found.field), "options", ()))
    if found.option_a not in options or found.option_b not in options:
        return None
    pinned = [int(i) for i in loads(found.pinned)]
    still = [int(r[0]) for r in tx.rows(STILL_OPEN, {"ids": pinned})] if pinned else []
    pair = (options.index(found.option_a), options.index(found.option_b))
    return RoundSampling(found.field, pair, tuple(still))


def _check_pair(project: Project, field: str, a: Any, b: Any) -> None:
    options = list(getattr(project.schema.by_name.get(field), "options", ()))
    for name, value in (("a", a), ("b", b)):
        if not isinstance(value, str) or value not in options:
            raise InvalidInput(
                f"{name} must be an option of the field {field!r}: one of {options}",
                [{"field": name, "reason": "not an option"}],
            )
    if a == b:
        raise InvalidInput("a round's pair is two different options", [{"field": "b"}])


def _check_budget(budget: Any) -> int:
    if isinstance(budget, bool) or not isinstance(budget, int) or not 1 <= budget <= MAX_BUDGET:
        raise InvalidInput(
            f"budget is a number of new labels from 1 to {MAX_BUDGET}",
            [{"field": "budget", "reason": "out of range"}],
        )
    return budget


def wrongly_predicted(
    tx: CoreTx, project: Project, field: str, a: str, b: str, limit: int
) -> list[int]:
    """Labelled items of class a predicted b, or of b predicted a, that a round may reopen:
    not held out, not reviewed (newest first, at most ``limit``)."""
    options = list(getattr(project.schema.by_name.get(field), "options", ()))
    pair = {options.index(a), options.index(b)}
    out = []
    for j in judged_items(tx, project, field, options):
        if j.truth not in pair or j.predicted not in pair or j.truth == j.predicted:
            continue
        if j.is_reviewed or in_held_out(project.id, j.item_id, project.holdout_share):
            continue
        out.append(j.item_id)
        if len(out) >= limit:
            break
    return sorted(out)


@transaction("write")
def open_round(
    tx: CoreTx,
    project: Project,
    *,
    a: Any,
    b: Any,
    budget: Any,
    train_after: bool = True,
    now: float,
    actor_id: int | None,
) -> dict[str, Any]:
    """Open a correction round for the pair (a, b) of the loop field (see the module)."""
    tx.one(LOCK_PROJECT, {"p": project.id})
    budget = _check_budget(budget)
    promoted = versions.promoted_version(tx, project.id)
    if promoted is None or promoted.state != "ready":
        raise Conflict(
            "a correction round starts from the promoted model version: promote one first",
            [{"field": "version", "reason": "none promoted"}],
        )
    field = loop_field(project, promoted.fields)
    if field is None:
        raise InvalidInput("the promoted version predicts no choice field", [{"field": "field"}])
    _check_pair(project, field, a, b)
    if tx.one(OPEN_ROUND, {"p": project.id}) is not None:
        raise Conflict(
            "a correction round is open in this project already: close it first",
            [{"field": "project_id", "reason": "round open"}],
        )
    if project.ordering != SCORE_ORDERING:
        update_settings(
            tx,
            project_id=project.id,
            changes={"ordering": SCORE_ORDERING},
            now=now,
            actor_id=actor_id,
        )
    limit = min(MAX_PINNED, budget // 2)
    pinned = wrongly_predicted(tx, project, field, a, b, limit) if limit else []
    reopen(tx, project, pinned)
    row = tx.one(
        INSERT,
        {
            "p": project.id,
            "f": field,
            "a": a,
            "b": b,
            "budget": budget,
            "v": promoted.version,
            "pinned": dumps(pinned),
            "after": _newest_annotation(tx, project.id),
            "train": bool(train_after),
            "by": actor_id,
            "now": now,
        },
    )
    assert row is not None
    found = tx.one(ONE, {"p": project.id, "id": int(row[0])})
    assert found is not None
    out = round_dict(found, spent=0)
    audit.record(
        tx,
        action="correction_round.open",
        target=f"project:{project.id}",
        now=now,
        workspace_id=project.workspace_id,
        actor_id=actor_id,
        details={k: out[k] for k in ("id", "field", "a", "b", "budget", "from_version", "pinned")},
    )
    _enqueue(tx, project, "score", {}, now, actor_id)
    return out


def _newest_annotation(tx: CoreTx, project_id: int) -> int:
    row = tx.one(NEWEST_ANNOTATION, {"p": project_id})
    return int(row[0]) if row else 0


def reopen(tx: CoreTx, project: Project, item_ids: list[int]) -> None:
    """Each closed item of ``item_ids`` gives up one place, so one more annotator labels it."""
    closed = set(item_ids) - {int(r[0]) for r in tx.rows(STILL_OPEN, {"ids": item_ids})}
    params = [{"id": i, "dl": 0, "ds": -1, **project.open_params} for i in sorted(closed)]
    if params:
        tx.many(BUMP_ITEM, params)


def _enqueue(
    tx: CoreTx, project: Project, kind: str, params: dict, now: float, actor_id: int | None
) -> int:
    return job_queue.enqueue(
        tx,
        kind=kind,
        params=params,
        now=now,
        project_id=project.id,
        workspace_id=project.workspace_id,
        created_by=actor_id,
    )


def _close(
    tx: CoreTx, project: Project, found: Round, *, reason: str, now: float, actor_id: int | None
) -> dict[str, Any]:
    spent = labels_since(tx, project.id, found.after_annotation)
    tx.run(CLOSE, {"spent": spent, "by": actor_id, "now": now, "reason": reason, "id": found.id})
    jobs = {"score": _enqueue(tx, project, "score", {}, now, actor_id)}
    if found.train_after:
        start = versions.get_version(tx, project.id, found.from_version)
        params = {
            "predictor": start.predictor,
            "params": start.params,
            "fields": [f["name"] for f in start.fields],
            "then": "promote_and_predict",
        }
        jobs["train"] = _enqueue(tx, project, "train", params, now, actor_id)
    audit.record(
        tx,
        action="correction_round.close",
        target=f"project:{project.id}",
        now=now,
        workspace_id=project.workspace_id,
        actor_id=actor_id,
        details={"id": found.id, "reason": reason, "labels_spent": spent, "jobs": jobs},
    )
    closed = tx.one(ONE, {"p": project.id, "id": found.id})
    assert closed is not None
    return {**round_dict(closed, spent=spent), "jobs": jobs}


@transaction("write")
def close_round(
    tx: CoreTx, project: Project, *, now: float, actor_id: int | None
) -> dict[str, Any]:
    """A manager closes the project's open round (a NotFound when none is open)."""
    found = tx.one(OPEN_ROUND, {"p": project.id})
    if found is None:
        raise NotFound("no correction round is open in this project", [{"field": "project_id"}])
    return _close(tx, project, found, reason="manager", now=now, actor_id=actor_id)


@transaction("write")
def close_spent_rounds(tx: CoreTx, project_id: int | None, *, now: float) -> list[int]:
    """Close the open rounds whose budget is spent (of one project, or of every project):
    the ids closed."""
    projects = [project_id] if project_id is not None else []
    if project_id is None:
        projects = [int(r[0]) for r in tx.rows(OPEN_ANYWHERE, {})]
    closed = []
    for p in projects:
        found = tx.one(OPEN_ROUND, {"p": p})
        if found is None or labels_since(tx, p, found.after_annotation) < found.budget:
            continue
        project = load_project(tx, p)
        _close(tx, project, found, reason="budget", now=now, actor_id=None)
        closed.append(found.id)
    return closed


def round_dict(r: Round, *, spent: int) -> dict[str, Any]:
    """A round as the API answers it."""
    return {
        "id": r.id,
        "field": r.field,
        "a": r.option_a,
        "b": r.option_b,
        "budget": r.budget,
        "state": r.state,
        "from_version": r.from_version,
        "pinned": len(loads(r.pinned)),
        "labels_spent": spent,
        "train_after": bool(r.train_after),
        "opened_by": r.opened_by,
        "opened_at": iso(r.opened_at),
        "closed_by": r.closed_by,
        "closed_at": iso(r.closed_at),
        "closed_reason": r.closed_reason,
        "opened_at_ts": r.opened_at,
        "closed_at_ts": r.closed_at,
    }


@transaction("read")
def list_rounds(tx: CoreTx, project: Project, *, limit: int = 100) -> list[dict[str, Any]]:
    """The project's rounds, newest first (an open round's labels spent counted now)."""
    out = []
    for r in tx.rows(ALL, {"p": project.id, "n": limit}):
        spent = (
            labels_since(tx, project.id, r.after_annotation)
            if r.state == "open"
            else r.labels_spent
        )
        out.append(round_dict(r, spent=spent))
    return out
