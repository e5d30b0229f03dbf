"""Suspected label errors: what a run found, the review queue's view of them, reviewers'
verdicts and the detector's precision in production.

A run (job kind ``label_errors``, :mod:`labelfarm.jobs.label_error_jobs`) replaces the
project's *open* issues with the top of its new list; decided issues stay, as the record. An
issue is decided by a reviewer:

* by the review decision on its item (:func:`record_review_verdict`, called by
  :func:`labelfarm.services.review.decide`): a final label that differs from the suspected
  one **confirms** the issue, the same label kept **rejects** it;
* or explicitly, "not an error" (:func:`dismiss`): rejected, the item stays as it is.

The detector's production precision is ``confirmed / (confirmed + rejected)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from labelfarm.db.batches import chunks
from labelfarm.db.tx import CoreTx, Sql, transaction
from labelfarm.errors import InvalidInput, NotFound
from labelfarm.jsonutil import dumps, iso, loads
from labelfarm.schema import FieldType
from labelfarm.services import audit
from labelfarm.services.annotator_models import ClassModel, load_annotator_models
from labelfarm.services.label_errors_folds import DEFAULT_FOLDS, MAX_FOLDS, MIN_FOLDS
from labelfarm.services.label_errors_rank import Suspect, Vote
from labelfarm.services.models import versions
from labelfarm.services.models.versions import ModelVersion
from labelfarm.services.projects import Project

STATES = ("open", "confirmed", "rejected")
MAX_LIST = 1000


class Issue(NamedTuple):
    id: int
    item_id: int
    job_id: int | None
    field: str
    label: str
    suggested: str
    score: float
    reason: str
    state: str
    verdict_by: int | None
    verdict_at: float | None
    review_id: int | None
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "item_id": self.item_id,
            "job_id": self.job_id,
            "field": self.field,
            "label": self.label,
            "suggested": self.suggested,
            "score": self.score,
            "reason": loads(self.reason),
            "state": self.state,
            "verdict_by": self.verdict_by,
            "verdict_at": iso(self.verdict_at),
            "review_id": self.review_id,
            "created_at": iso(self.created_at),
        }


COLUMNS = (
    "id, item_id, job_id, field, label, suggested, score, reason, state, verdict_by, "
    "verdict_at, review_id, created_at"
)
_DELETE_OPEN = Sql("DELETE FROM label_issues WHERE project_id = :p AND state = 'open'")
_INSERT = Sql(
    "INSERT INTO label_issues (project_id, item_id, job_id, field, label, suggested, score, "
    "reason, state, created_at) VALUES (:p, :item, :job, :field, :label, :suggested, :score, "
    ":reason, 'open', :now)"
)
_KEPT = Sql("SELECT item_id, label FROM label_issues WHERE project_id = :p AND state = 'rejected'")
_LIST = Sql(
    f"SELECT {COLUMNS} FROM label_issues WHERE project_id = :p AND state = :s "
    "ORDER BY score DESC, id LIMIT :n",
    row=Issue,
)
_COUNTS = Sql("SELECT state, COUNT(*) FROM label_issues WHERE project_id = :p GROUP BY state")
_OPEN_OF_ITEM = Sql(
    f"SELECT {COLUMNS} FROM label_issues WHERE item_id = :i AND project_id = :p "
    "AND state = 'open' ORDER BY id",
    row=Issue,
)
_ONE = Sql(f"SELECT {COLUMNS} FROM label_issues WHERE id = :id AND project_id = :p", row=Issue)
_DECIDE = Sql(
    "UPDATE label_issues SET state = :s, verdict_by = :by, verdict_at = :at, review_id = :r "
    "WHERE id = :id AND state = 'open'"
)


# -- a run's results --------------------------------------------------------------------------
@transaction("read")
def kept_labels(tx: CoreTx, project_id: int) -> frozenset[tuple[int, str]]:
    """(item id, label) pairs a reviewer rejected as errors: never suspected again."""
    return frozenset((int(i), str(label)) for i, label in tx.rows(_KEPT, {"p": project_id}))


@transaction("write")
def store_run(
    tx: CoreTx,
    project: Project,
    field: str,
    suspects: Sequence[Suspect],
    *,
    job_id: int | None,
    now: float,
) -> int:
    """Replace the project's open issues with ``suspects``; the number stored."""
    tx.run(_DELETE_OPEN, {"p": project.id})
    tx.many(
        _INSERT,
        [
            {
                "p": project.id,
                "item": s.item_id,
                "job": job_id,
                "field": field,
                "label": s.label,
                "suggested": s.suggested,
                "score": s.score,
                "reason": dumps(s.reason),
                "now": now,
            }
            for s in suspects
        ],
    )
    return len(suspects)


# -- reading ----------------------------------------------------------------------------------
def precision_of(counts: dict[str, int]) -> float | None:
    decided = counts.get("confirmed", 0) + counts.get("rejected", 0)
    return round(counts.get("confirmed", 0) / decided, 6) if decided else None


@transaction("read")
def report(
    tx: CoreTx, project: Project, *, state: str = "open", limit: int = 100
) -> dict[str, Any]:
    """The issues in ``state`` (most likely wrong first), the counts per state and the
    detector's precision on the decided ones."""
    if state not in STATES:
        raise InvalidInput(f"state must be one of {list(STATES)}", [{"field": "state"}])
    if not 1 <= limit <= MAX_LIST:
        raise InvalidInput(f"limit must be in [1, {MAX_LIST}]", [{"field": "limit"}])
    counts = {s: 0 for s in STATES}
    for s, n in tx.rows(_COUNTS, {"p": project.id}):
        counts[str(s)] = int(n)
    rows = tx.rows(_LIST, {"p": project.id, "s": state, "n": limit})
    return {
        "counts": counts,
        "precision": precision_of(counts),
        "state": state,
        "issues": [r.to_dict() for r in rows],
    }


def open_issue(tx: CoreTx, project_id: int, item_id: int) -> dict[str, Any] | None:
    """The item's open issue, for the review page (None when it has none)."""
    found = tx.rows(_OPEN_OF_ITEM, {"i": item_id, "p": project_id})
    return found[0].to_dict() if found else None


# -- verdicts ---------------------------------------------------------------------------------
def record_review_verdict(
    tx: CoreTx,
    project_id: int,
    item_id: int,
    value: Any,
    *,
    review_id: int,
    reviewer_id: int,
    now: float,
) -> None:
    """A review decision decides the item's open issues: confirmed when the final label of
    the issue's field differs from the suspected one, rejected when it is the same."""
    for issue in tx.rows(_OPEN_OF_ITEM, {"i": item_id, "p": project_id}):
        final = value.get(issue.field) if isinstance(value, dict) else None
        state = "rejected" if final == issue.label else "confirmed"
        tx.run(
            _DECIDE,
            {"s": state, "by": reviewer_id, "at": now, "r": review_id, "id": issue.id},
        )


@transaction("write")
def dismiss(
    tx: CoreTx, project: Project, item_id: int, *, reviewer_id: int, now: float
) -> dict[str, Any]:
    """Not an error: the item's open issue is rejected and the item left as it is
    (audited); a 404 when the item has no open issue."""
    found = tx.rows(_OPEN_OF_ITEM, {"i": item_id, "p": project.id})
    if not found:
        raise NotFound(
            f"item {item_id} has no open label issue in this project", [{"field": "item_id"}]
        )
    issue = found[0]
    issue_id = issue.id
    tx.run(_DECIDE, {"s": "rejected", "by": reviewer_id, "at": now, "r": None, "id": issue_id})
    audit.record(
        tx,
        action="label_error.dismiss",
        target=f"item:{issue.item_id}",
        now=now,
        workspace_id=project.workspace_id,
        actor_id=reviewer_id,
        details={"project_id": project.id, "issue_id": issue_id},
    )
    decided = tx.one(_ONE, {"id": issue_id, "p": project.id})
    assert decided is not None
    return decided.to_dict()


# -- the review queue's source -----------------------------------------------------------------
_QUEUE = Sql(
    "SELECT l.item_id, l.id, l.score, l.reason FROM label_issues l "
    "JOIN items i ON i.id = l.item_id WHERE l.project_id = :p AND l.state = 'open' "
    "AND i.is_reviewed = :no ORDER BY l.score DESC, l.id LIMIT :cap"
)


def queue_entries(tx: CoreTx, project_id: int, cap: int) -> list[dict[str, Any]]:
    """The open issues of items no reviewer decided yet, most likely wrong first: what the
    review queue shows (``label_error``: the issue, its score and the reason's text)."""
    out = []
    for item_id, issue_id, score, reason in tx.rows(
        _QUEUE, {"p": project_id, "no": False, "cap": cap}
    ):
        text = loads(reason).get("text", "")
        out.append(
            {
                "item_id": int(item_id),
                "issue_id": int(issue_id),
                "score": float(score),
                "text": text,
            }
        )
    return out


# -- what a run reads -------------------------------------------------------------------------
DEFAULT_TOP, MAX_TOP = 100, 5000
MAX_ITEMS = 200_000  # labelled items one run cross-validates
_VOTES = Sql(
    "SELECT item_id, user_id, value FROM annotations "
    "WHERE project_id = :p AND item_id IN :ids AND excluded IS NULL ORDER BY id"
)


def check_run(params: Any) -> dict[str, Any]:
    """A run's parameters, checked and bounded: ``folds`` (2..10, default 5), ``top`` (how
    many suspects to keep, 1..5000, default 100) and ``version`` (default: the promoted
    version, else the newest ready one)."""
    params = params if isinstance(params, dict) else {}
    out: dict[str, Any] = {}
    problems = []
    for name, low, high, default in (
        ("folds", MIN_FOLDS, MAX_FOLDS, DEFAULT_FOLDS),
        ("top", 1, MAX_TOP, DEFAULT_TOP),
        ("version", 1, 2**31 - 1, None),
    ):
        value = params.get(name, default)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high
        ):
            problems.append({"field": name, "reason": f"an integer in [{low}, {high}]"})
        out[name] = value
    if problems:
        raise InvalidInput("the label-error run's parameters are not valid", problems)
    return out


@transaction("read")
def choose_version(tx: CoreTx, project_id: int, number: int | None) -> ModelVersion:
    """The version whose predictor a run cross-validates: the one named, else the promoted
    one, else the newest ready one; a 422 when there is none."""
    found: ModelVersion | None
    if number is not None:
        found = versions.get_version(tx, project_id, number)
    else:
        found = versions.promoted_version(tx, project_id)
        if found is None:
            ready = [v for v in versions.list_versions(tx, project_id) if v.state == "ready"]
            found = ready[-1] if ready else None
    if found is None or found.state != "ready":
        raise InvalidInput(
            "label-error detection trains the predictor of a model version in folds: train "
            "a model version first (none is ready in this project)",
            [{"field": "version", "reason": "no ready model version"}],
        )
    return found


@transaction("read")
def votes_of(tx: CoreTx, project_id: int, item_ids: Sequence[int], field: str) -> list[Vote]:
    """Each annotator's newest counted answer for ``field`` on the items."""
    newest: dict[tuple[int, int], Any] = {}
    for chunk in chunks(list(item_ids)):
        for item_id, user_id, raw in tx.rows(_VOTES, {"p": project_id, "ids": list(chunk)}):
            value = loads(raw)
            newest[(int(item_id), int(user_id))] = (
                value.get(field) if isinstance(value, dict) else None
            )
    return [Vote(i, u, v) for (i, u), v in newest.items() if v is not None]


@transaction("read")
def class_model(tx: CoreTx, project: Project, field: FieldType) -> ClassModel:
    """The fitted Dawid-Skene model of the field's annotators (the prior before a fit)."""
    return load_annotator_models(tx, project.id).class_model(field)
