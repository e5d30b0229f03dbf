"""The confusion report: which pairs of options the promoted model confuses, and whether
correction rounds helped.

For the project's loop field (:func:`labelfarm.services.models.training.loop_field`: the
first ``choice`` field the promoted version predicts) the report counts, per unordered pair
of options (a, b), the items of class a predicted as b and of b predicted as a:

* on the **held-out set**, from the promoted version's evaluation (its confusion matrix,
  :mod:`labelfarm.services.models.evaluation`): human-labelled items drawn by a fixed hash,
  never trained on and never chosen by a sampler;
* on **labelled items**: items the promoted version predicted while they had no label
  (``model_outputs``) and that people labelled since, against their final label
  (:mod:`labelfarm.services.correction_rounds_items`), with a few of them as examples.

Pairs are ranked by their confusions (both sources, both ways), most first.

**A pair's error** on the held-out set: the share of its held-out items (true class a or b)
predicted as the other one. It is given for every ready version from its stored evaluation.
Versions compare fairly only on the same held-out set: each evaluation is on the held-out set
of its day, which grows as people label; ``same_set`` says whether every version was
evaluated on as many items of the field (when not, re-evaluate them all: ``POST
…/confusion/evaluate`` queues an ``evaluate`` job per version, which evaluates it on the
current set).
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

from labelfarm.db.tx import CoreTx, transaction
from labelfarm.services import job_queue
from labelfarm.services.correction_rounds_items import judged_items
from labelfarm.services.models import versions
from labelfarm.services.models.training import loop_field
from labelfarm.services.models.versions import ModelVersion
from labelfarm.services.projects import Project

TOP_PAIRS = 10
EXAMPLES = 4


def pair_error(matrix: list[list[int]] | None, a: int, b: int) -> float | None:
    """The share of items of class a or b predicted as the other one (None: no such item)."""
    if not matrix or max(a, b) >= len(matrix):
        return None
    n = sum(matrix[a]) + sum(matrix[b])
    return (matrix[a][b] + matrix[b][a]) / n if n else None


def field_evaluation(v: ModelVersion, field: str, options: list[str]) -> dict[str, Any] | None:
    """The version's held-out evaluation of ``field`` when it has a confusion matrix over
    ``options`` (the schema's options now), else None."""
    ev = ((v.evaluation or {}).get("fields") or {}).get(field)
    if not ev or list(ev.get("options") or []) != options or not ev.get("confusion"):
        return None
    return dict(ev)


def version_rows(found: list[ModelVersion], field: str, options: list[str]) -> list[dict]:
    """The ready (or retired) versions with their held-out confusion matrix of ``field``."""
    out = []
    for v in found:
        ev = field_evaluation(v, field, options) if v.state in ("ready", "retired") else None
        if ev is None:
            continue
        out.append(
            {
                "version": v.version,
                "promoted": v.promoted,
                "state": v.state,
                "created_at": v.created_at,
                "n": int(ev.get("n") or 0),
                "accuracy": ev.get("accuracy"),
                "confusion": ev["confusion"],
            }
        )
    return out


def _pair_rows(options: list[str], matrix: list[list[int]] | None) -> dict[tuple[int, int], dict]:
    rows = {}
    for a, b in combinations(range(len(options)), 2):
        held = {"a_as_b": 0, "b_as_a": 0, "n": 0}
        if matrix:
            held = {
                "a_as_b": int(matrix[a][b]),
                "b_as_a": int(matrix[b][a]),
                "n": int(sum(matrix[a]) + sum(matrix[b])),
            }
        rows[(a, b)] = {
            "a": options[a],
            "b": options[b],
            "held_out": held,
            "labelled": {"a_as_b": 0, "b_as_a": 0, "n": 0},
            "examples": [],
        }
    return rows


def _count_labelled(
    rows: dict[tuple[int, int], dict], judged: list[Any], options: list[str], examples: int
) -> None:
    """Add the labelled items' confusions (and examples) to the pairs' rows."""
    k = len(options)
    for j in judged:
        for other in range(k):
            if other == j.truth:
                continue
            key = (min(j.truth, other), max(j.truth, other))
            row = rows[key]["labelled"]
            row["n"] += 1  # the items of class a or b
            if j.predicted == other:
                row["a_as_b" if j.truth == key[0] else "b_as_a"] += 1
                shown = rows[key]["examples"]
                if len(shown) < examples:
                    shown.append(
                        {
                            "item_id": j.item_id,
                            "truth": options[j.truth],
                            "predicted": options[j.predicted],
                            "media_sha256": j.media_sha256,
                        }
                    )


@transaction("read")
def confusion_report(
    tx: CoreTx, project: Project, *, top: int = TOP_PAIRS, examples: int = EXAMPLES
) -> dict[str, Any]:
    """The report (see the module's docstring): field, options, versions, pairs."""
    found = versions.list_versions(tx, project.id)
    promoted = next((v for v in found if v.promoted and v.state == "ready"), None)
    out: dict[str, Any] = {
        "field": None,
        "options": [],
        "promoted": promoted.version if promoted else None,
        "versions": [],
        "same_set": True,
        "pairs": [],
        "reason": None,
    }
    if promoted is None:
        out["reason"] = "no model version is promoted: train one and promote it"
        return out
    field = loop_field(project, promoted.fields)
    if field is None:
        out["reason"] = "the promoted version predicts no choice field"
        return out
    options = list(getattr(project.schema.by_name.get(field), "options", ()))
    out.update(field=field, options=options)
    rows_v = version_rows(found, field, options)
    out["versions"] = [{k: v for k, v in r.items() if k != "confusion"} for r in rows_v]
    out["same_set"] = len({r["n"] for r in rows_v}) <= 1
    matrix = next((r["confusion"] for r in rows_v if r["version"] == promoted.version), None)
    rows = _pair_rows(options, matrix)
    judged = judged_items(tx, project, field, options, version=promoted.version)
    _count_labelled(rows, judged, options, examples)
    ranked = []
    for (a, b), row in rows.items():
        row["held_out"]["error"] = pair_error(matrix, a, b)
        row["confusions"] = sum(
            row[s][d] for s in ("held_out", "labelled") for d in ("a_as_b", "b_as_a")
        )
        row["errors"] = {str(r["version"]): pair_error(r["confusion"], a, b) for r in rows_v}
        ranked.append(row)
    ranked.sort(key=lambda r: (-r["confusions"], -(r["held_out"]["error"] or 0.0)))
    out["pairs"] = [r for r in ranked if r["confusions"] > 0][:top]
    return out


@transaction("read")
def pair_errors(
    tx: CoreTx, project: Project, field: str, a: str, b: str
) -> dict[int, float | None]:
    """The pair's held-out error per version (those evaluated on ``field``)."""
    options = list(getattr(project.schema.by_name.get(field), "options", ()))
    if a not in options or b not in options:
        return {}
    ia, ib = options.index(a), options.index(b)
    found = versions.list_versions(tx, project.id)
    return {
        r["version"]: pair_error(r["confusion"], ia, ib)
        for r in version_rows(found, field, options)
    }


@transaction("write")
def evaluate_all(
    tx: CoreTx, project: Project, *, now: float, actor_id: int | None
) -> dict[str, int]:
    """Queue an ``evaluate`` job per ready version, so that every version is evaluated on the
    current held-out set: {version: job id}."""
    jobs = {}
    for v in versions.list_versions(tx, project.id):
        if v.state == "ready" and v.artifact:
            jobs[str(v.version)] = job_queue.enqueue(
                tx,
                kind="evaluate",
                params={"version": v.version},
                now=now,
                project_id=project.id,
                workspace_id=project.workspace_id,
                created_by=actor_id,
            )
    return jobs
