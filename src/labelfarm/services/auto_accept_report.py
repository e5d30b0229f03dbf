"""The auto-accept report of a project (the quality page's section and
``GET …/auto-accept``): per class of the loop field, the newest threshold with its held-out
evidence, the share of the project's items the model labelled, the spot checks and the state.
"""

from __future__ import annotations

from typing import Any

from labelfarm.db.tx import CoreTx, Sql, transaction
from labelfarm.ml.auto_accept import clopper_pearson_lower
from labelfarm.services.auto_accept import APPLIED, NONE, WITHDRAWN, ThresholdRow, thresholds
from labelfarm.services.auto_accept_spot import bound, spot_tallies
from labelfarm.services.projects import Project

N_ITEMS = Sql(
    "SELECT COUNT(*) FROM items WHERE project_id = :p AND status = 'ready' AND NOT is_gold"
)
LABELLED = Sql(
    "SELECT value, state, COUNT(*) FROM auto_labels WHERE project_id = :p GROUP BY value, state"
)


def _ratio(k: int, n: int) -> float | None:
    return round(k / n, 6) if n else None


def _class(
    option: str, row: ThresholdRow | None, labelled: dict[str, int], spot: list[int], n: int
) -> dict[str, Any]:
    """One class's line of the report."""
    live = labelled.get("accepted", 0) + labelled.get("spot_check", 0)
    k, m = spot
    out: dict[str, Any] = {
        "option": option,
        "state": row.state if row else NONE,
        "threshold": None if row is None or row.threshold is None else round(row.threshold, 6),
        "version": row.version if row else None,
        "evidence": {
            "n": row.n_evidence if row else 0,
            "correct": row.n_correct if row else 0,
            "precision": _ratio(row.n_correct, row.n_evidence) if row else None,
            "lower_bound": round(row.lower_bound, 6) if row else 0.0,
        },
        "auto_labelled": live,
        "auto_share": _ratio(live, n),
        "withdrawn_labels": labelled.get(WITHDRAWN, 0),
        "spot_checks": {
            "n": m,
            "correct": k,
            "precision": _ratio(k, m),
            "lower_bound": round(clopper_pearson_lower(k, m), 6),
            "pending": labelled.get("spot_check", 0) - m if row else 0,
        },
        "bound": round(bound(row), 6) if row and row.state != NONE else None,
    }
    return out


@transaction("read")
def report(tx: CoreTx, project: Project) -> dict[str, Any]:
    """The project's auto-accept report."""
    rows = thresholds(tx, project.id, (*APPLIED, WITHDRAWN, NONE))
    newest: dict[str, ThresholdRow] = {}
    for r in rows:  # in id order: the newest run's row stays
        newest[r.option] = r
    field = rows[-1].field if rows else None
    options = [
        *getattr(next((f for f in project.schema.fields if f.name == field), None), "options", ())
    ]
    options += [o for o in newest if o not in options]
    n_items = int(tx.rows(N_ITEMS, {"p": project.id})[0][0])
    labelled: dict[str, dict[str, int]] = {}
    for value, state, count in tx.rows(LABELLED, {"p": project.id}):
        labelled.setdefault(value, {})[state] = int(count)
    # spot checks of the labels that stand, plus those of the thresholds they withdrew
    spot = spot_tallies(rows)
    classes = [
        _class(o, newest.get(o), labelled.get(o, {}), spot.get(o, [0, 0]), n_items) for o in options
    ]
    total = sum(c["auto_labelled"] for c in classes)
    return {
        "target": project.auto_accept_target,
        "spot_check_share": project.spot_check_share,
        "holdout_share": project.holdout_share,
        "field": field,
        "n_items": n_items,
        "auto_labelled": total,
        "auto_share": _ratio(total, n_items),
        "classes": classes,
    }
