"""Quality reports: agreement, gold accuracy with its uncertainty, class confusion, standing.

Per project and field:

- Krippendorff's alpha (``nominal`` for choice and, per option, multichoice; ``interval``
  for number and rating), Fleiss' kappa on the items with the most common number of raters
  (its precondition), per class Fleiss' kappa and specific agreement;
- for the other field types (text, boxes, shapes...), the mean pairwise similarity of the
  field type (``similarity``) between annotators on the same item;
- the class confusion of choice fields: rows are the reference class (gold, else the
  reviewer's decision, else the Dawid-Skene consensus), columns the annotators' answers.

Per annotator: agreement with the others (mean similarity to co-annotators on shared
items), gold accuracy as a Beta(1, 1) posterior with a 90 % credible interval (overall and
per class, from ``gold_results``), the Dawid-Skene accuracy estimate, and the standing
(``annotator_status``: paused and failed annotators with their evidence).

Annotators appear by pseudonym; ``identities=True`` adds user ids and display names (never
for clients).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from labelfarm import ml
from labelfarm.errors import NotFound
from labelfarm.ml.labels import FloatArray
from labelfarm.schema import FieldType
from labelfarm.services import audit
from labelfarm.services.aggregation import (
    AnnotatorModels,
    ProjectLabels,
    fit_annotator_models,
    load_annotator_models,
    read_project_labels,
)
from labelfarm.services.jsonutil import iso, loads
from labelfarm.services.projects import Project, reopen_items

CREDIBLE = 0.9
MAX_MATRIX = 50  # annotators beyond which the pairwise matrix is left out of the report
_INTERVAL_TYPES = frozenset({"number", "rating"})

_PEOPLE = text(
    "SELECT DISTINCT u.id, u.pseudonym, u.display_name FROM users u "
    "JOIN annotations a ON a.user_id = u.id WHERE a.project_id = :p"
)
_GOLD = text(
    "SELECT user_id, gold_class, score, qualification, item_id, created_at FROM gold_results "
    "WHERE project_id = :p ORDER BY id"
)
_STATUS = text(
    "SELECT s.user_id, s.state, s.reason, s.evidence, s.updated_at, u.pseudonym, "
    "u.display_name FROM annotator_status s JOIN users u ON u.id = s.user_id "
    "WHERE s.project_id = :p ORDER BY s.user_id"
)


def _beta(correct: float, total: float) -> dict[str, float | int | None]:
    b = ml.beta_accuracy(np.array([correct]), np.array([total]), credible=CREDIBLE)
    return {
        "n": int(total),
        "correct": round(float(correct), 6),
        "mean": round(float(b.mean[0]), 6),
        "lower": round(float(b.lower[0]), 6),
        "upper": round(float(b.upper[0]), 6),
        "observed": round(float(correct / total), 6) if total else None,
    }


def _num(x: float) -> float | None:
    """JSON-safe: NaN (an undefined coefficient) becomes None."""
    return None if x is None or not np.isfinite(x) else round(float(x), 6)


# -- agreement ---------------------------------------------------------------------------------
def _compact_reliability(groups: Sequence[Sequence[float]]) -> FloatArray:
    """A ``(max raters, n_units)`` value matrix: alpha depends only on each unit's values,
    not on who gave them, so this is as good as annotators x units and much smaller."""
    width = max((len(g) for g in groups), default=0)
    data = np.full((width, len(groups)), np.nan)
    for j, g in enumerate(groups):
        data[: len(g), j] = g
    return data


def _categorical(f: FieldType, by_item: dict[int, list[tuple[int, Any]]]) -> dict[str, Any]:
    classes = list(getattr(f, "options", ()))
    index = {c: k for k, c in enumerate(classes)}
    groups = [[index[v] for _, v in votes if v in index] for votes in by_item.values()]
    groups = [g for g in groups if len(g) >= 2]
    out: dict[str, Any] = {"level": "nominal", "n_items": len(groups)}
    if not groups:
        return {**out, "krippendorff_alpha": None, "fleiss_kappa": None, "per_class": []}
    out["krippendorff_alpha"] = _num(ml.krippendorff_alpha(_compact_reliability(groups)))
    counts = np.zeros((len(groups), len(classes)))
    for i, g in enumerate(groups):
        np.add.at(counts[i], g, 1.0)
    raters = counts.sum(axis=1)
    modal = Counter(raters.tolist()).most_common(1)[0][0]
    same = counts[raters == modal]
    fleiss = ml.fleiss_kappa(same)
    specific = ml.specific_agreement(counts)
    out["fleiss_kappa"] = _num(fleiss.kappa)
    out["fleiss_items"] = int(same.shape[0])
    out["fleiss_raters"] = int(modal)
    out["per_class"] = [
        {
            "class": c,
            "n": int(counts[:, k].sum()),
            "fleiss_kappa": _num(fleiss.per_category[k]),
            "specific_agreement": _num(specific[k]),
        }
        for k, c in enumerate(classes)
    ]
    return out


def _multichoice(f: FieldType, by_item: dict[int, list[tuple[int, Any]]]) -> dict[str, Any]:
    options = list(getattr(f, "options", ()))
    groups = [votes for votes in by_item.values() if len(votes) >= 2]
    per_option, pooled = [], []
    for option in options:
        units = [[float(option in v) for _, v in votes] for votes in groups]
        pooled.extend(units)
        alpha = ml.krippendorff_alpha(_compact_reliability(units)) if units else float("nan")
        chosen = sum(sum(u) for u in units)
        per_option.append({"class": option, "n": int(chosen), "krippendorff_alpha": _num(alpha)})
    alpha = ml.krippendorff_alpha(_compact_reliability(pooled)) if pooled else float("nan")
    return {
        "level": "nominal, per option",
        "n_items": len(groups),
        "krippendorff_alpha": _num(alpha),
        "per_class": per_option,
    }


def _interval(f: FieldType, by_item: dict[int, list[tuple[int, Any]]]) -> dict[str, Any]:
    groups = [[float(v) for _, v in votes] for votes in by_item.values() if len(votes) >= 2]
    alpha = (
        ml.krippendorff_alpha(_compact_reliability(groups), level="interval")
        if groups
        else float("nan")
    )
    return {"level": "interval", "n_items": len(groups), "krippendorff_alpha": _num(alpha)}


def _per_annotator_similarity(
    f: FieldType, by_item: dict[int, list[tuple[int, Any]]]
) -> tuple[dict[int, float], float | None, int]:
    """Mean similarity of each annotator to co-annotators on shared items; the overall mean."""
    sums: dict[int, float] = defaultdict(float)
    counts: dict[int, int] = defaultdict(int)
    total, n_pairs = 0.0, 0
    for votes in by_item.values():
        for i in range(len(votes)):
            for j in range(i + 1, len(votes)):
                (ua, a), (ub, b) = votes[i], votes[j]
                try:
                    s = float(f.similarity(a, b))
                except (KeyError, TypeError, ValueError):
                    continue
                sums[ua] += s
                sums[ub] += s
                counts[ua] += 1
                counts[ub] += 1
                total += s
                n_pairs += 1
    per = {u: sums[u] / counts[u] for u in counts}
    return per, (total / n_pairs if n_pairs else None), n_pairs


# -- confusion ---------------------------------------------------------------------------------
def _confusion(
    f: FieldType,
    by_item: dict[int, list[tuple[int, Any]]],
    data: ProjectLabels,
    models: AnnotatorModels,
) -> dict[str, Any]:
    """Reference class (gold, review, else consensus) x given class, counted over answers."""
    model = models.class_model(f)
    k = len(model.classes)
    matrix = np.zeros((k, k), dtype=np.int64)
    for item, votes in by_item.items():
        pairs = [(u, c) for u, v in votes if (c := model.index(v)) is not None]
        if not pairs:
            continue
        ref = None
        for source in (data.reviewed, data.gold):
            known = source.get(item)
            if known is not None and model.index(known.get(f.name)) is not None:
                ref = model.index(known.get(f.name))
                break
        if ref is None:
            ref = int(model.posterior(pairs).argmax())
        for _, c in pairs:
            matrix[ref, c] += 1
    return {
        "classes": list(model.classes),
        "reference": "gold, review or consensus",
        "matrix": matrix.tolist(),
    }


# -- reports -----------------------------------------------------------------------------------
def _by_item(f: FieldType, data: ProjectLabels) -> dict[int, list[tuple[int, Any]]]:
    out: dict[int, list[tuple[int, Any]]] = defaultdict(list)
    for (item, user), value in data.latest.items():
        if isinstance(value, dict) and value.get(f.name) is not None:
            out[item].append((user, value[f.name]))
    return out


def _field_report(
    f: FieldType, data: ProjectLabels, models: AnnotatorModels, people: dict[int, dict]
) -> tuple[dict[str, Any], dict[int, float]]:
    by_item = _by_item(f, data)
    report: dict[str, Any] = {"field": f.name, "type": f.type_name}
    if f.type_name == "choice":
        report.update(_categorical(f, by_item))
        report["confusion"] = _confusion(f, by_item, data, models)
    elif f.type_name == "multichoice":
        report.update(_multichoice(f, by_item))
    elif f.type_name in _INTERVAL_TYPES:
        report.update(_interval(f, by_item))
    per_annotator, mean_similarity, n_pairs = _per_annotator_similarity(f, by_item)
    report["mean_pairwise_similarity"] = _num(mean_similarity) if mean_similarity else None
    report["n_pairs"] = n_pairs
    if f.type_name == "choice" and len(people) <= MAX_MATRIX:
        report["pairwise"] = _pairwise_matrix(f, by_item, people)
    return report, per_annotator


def _pairwise_matrix(
    f: FieldType, by_item: dict[int, list[tuple[int, Any]]], people: dict[int, dict]
) -> dict[str, Any]:
    users = sorted(people)
    uix = {u: n for n, u in enumerate(users)}
    index = {c: k for k, c in enumerate(getattr(f, "options", ()))}
    rows = [
        (n, uix[u], index[v])
        for n, votes in enumerate(by_item.values())
        for u, v in votes
        if v in index and u in uix
    ]
    if not rows:
        return {
            "annotators": [people[u]["annotator"] for u in users],
            "agreement": [],
            "n_shared": [],
        }
    arr = np.array(rows, dtype=np.int64)
    pw = ml.pairwise_agreement(arr[:, 0], arr[:, 1], arr[:, 2], n_annotators=len(users))
    return {
        "annotators": [people[u]["annotator"] for u in users],
        "agreement": [[_num(x) for x in row] for row in pw.agreement.tolist()],
        "n_shared": pw.n_shared.tolist(),
    }


def _people(conn: Connection, project_id: int, identities: bool) -> dict[int, dict[str, Any]]:
    out = {}
    for r in conn.execute(_PEOPLE, {"p": project_id}):
        person: dict[str, Any] = {"annotator": r.pseudonym}
        if identities:
            person.update(user_id=r.id, display_name=r.display_name)
        out[r.id] = person
    return out


def _gold_by_user(conn: Connection, project_id: int) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = defaultdict(list)
    for r in conn.execute(_GOLD, {"p": project_id}):
        out[r.user_id].append(r)
    return out


def _statuses(conn: Connection, project_id: int, identities: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for r in conn.execute(_STATUS, {"p": project_id}):
        row: dict[str, Any] = {
            "annotator": r.pseudonym,
            "state": r.state,
            "reason": r.reason,
            "evidence": loads(r.evidence) if r.evidence else {},
            "since": iso(r.updated_at),
        }
        if identities:
            row.update(user_id=r.user_id, display_name=r.display_name)
        out.append(row)
    return out


def project_report(
    conn: Connection, project: Project, *, identities: bool = False
) -> dict[str, Any]:
    """The project's quality report (see the module docstring)."""
    data = read_project_labels(conn, project.id)
    models = load_annotator_models(conn, project.id)
    people = _people(conn, project.id, identities)
    fields, agreement_of = [], {}
    for f in project.schema.fields:
        report, per_annotator = _field_report(f, data, models, people)
        fields.append(report)
        agreement_of[f.name] = per_annotator
    gold = _gold_by_user(conn, project.id)
    statuses = _statuses(conn, project.id, identities)
    state_of = {s["annotator"]: s["state"] for s in statuses}
    n_by_user = Counter(user for _, user in data.latest)
    annotators = []
    for user, person in sorted(people.items(), key=lambda kv: kv[1]["annotator"]):
        results = gold.get(user, [])
        annotators.append(
            {
                **person,
                "n_items": n_by_user.get(user, 0),
                "agreement": {
                    name: _num(per[user]) for name, per in agreement_of.items() if user in per
                },
                "gold": _beta(sum(r.score for r in results), len(results)),
                "model_accuracy": _model_accuracy(models, user),
                "state": state_of.get(person["annotator"], "active"),
            }
        )
    total_gold = sum(len(v) for v in gold.values())
    return {
        "project_id": project.id,
        "n_items": len({item for item, _ in data.latest}),
        "n_annotations": len(data.latest),
        "n_annotators": len(people),
        "n_gold_results": total_gold,
        "gold": _beta(sum(r.score for v in gold.values() for r in v), total_gold),
        "fields": fields,
        "annotators": annotators,
        "paused": [s for s in statuses if s["state"] in ("paused", "failed")],
        "models_fitted_at": iso(models.fitted_at),
        "credible": CREDIBLE,
    }


def _model_accuracy(models: AnnotatorModels, user: int) -> dict[str, float | None]:
    out = {}
    for name, fm in models.fields.items():
        if fm.classes is not None and user in fm.classes.accuracy:
            out[name] = _num(fm.classes.accuracy[user])
    return out


def resolve_annotator(conn: Connection, project: Project, who: str, *, allow_id: bool) -> int:
    """The user id of an annotator of the project, by pseudonym (or by id when allowed)."""
    row = conn.execute(text("SELECT id FROM users WHERE pseudonym = :who"), {"who": who}).first()
    if row is None and allow_id and who.isdigit():
        row = conn.execute(text("SELECT id FROM users WHERE id = :id"), {"id": int(who)}).first()
    if row is not None:
        worked = conn.execute(
            text("SELECT 1 FROM annotations WHERE project_id = :p AND user_id = :u LIMIT 1"),
            {"p": project.id, "u": row.id},
        ).first()
        if worked is not None:
            return int(row.id)
    raise NotFound(f"no annotator {who!r} in this project")


def annotator_report(
    conn: Connection, project: Project, user_id: int, *, identities: bool = False
) -> dict[str, Any]:
    """One annotator's quality in the project: work, agreement, gold, model, standing."""
    data = read_project_labels(conn, project.id)
    models = load_annotator_models(conn, project.id)
    people = _people(conn, project.id, identities)
    if user_id not in people:
        raise NotFound("no such annotator in this project")
    fields = []
    for f in project.schema.fields:
        by_item = _by_item(f, data)
        per, _, _ = _per_annotator_similarity(f, by_item)
        entry: dict[str, Any] = {
            "field": f.name,
            "type": f.type_name,
            "n": sum(1 for votes in by_item.values() for u, _ in votes if u == user_id),
            "agreement": _num(per[user_id]) if user_id in per else None,
        }
        fm = models.fields.get(f.name)
        if fm is not None and fm.classes is not None and user_id in fm.classes.annotators:
            row = fm.classes.annotators[user_id]
            entry["model_accuracy"] = _num(fm.classes.accuracy.get(user_id, float("nan")))
            entry["confusion"] = {
                "classes": list(fm.classes.classes),
                "matrix": np.round(fm.classes.confusion[row], 4).tolist(),
            }
        if fm is not None and user_id in fm.weights:
            entry["weight"] = _num(fm.weights[user_id])
        fields.append(entry)
    results = _gold_by_user(conn, project.id).get(user_id, [])
    per_class: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in results:
        if r.gold_class is not None:
            per_class[r.gold_class][0] += float(r.score >= 1.0 - 1e-9)
            per_class[r.gold_class][1] += 1.0
    status: dict[str, Any] = next(
        (
            s
            for s in _statuses(conn, project.id, identities)
            if s["annotator"] == people[user_id]["annotator"]
        ),
        {"state": "active", "reason": "", "evidence": {}, "since": None},
    )
    return {
        **people[user_id],
        "project_id": project.id,
        "n_items": sum(1 for _, u in data.latest if u == user_id),
        "state": status["state"],
        "status": status,
        "gold": _beta(sum(r.score for r in results), len(results)),
        "qualification": _beta(
            sum(r.score for r in results if r.qualification),
            sum(1 for r in results if r.qualification),
        ),
        "gold_per_class": [
            {"class": c, **_beta(ok, n)} for c, (ok, n) in sorted(per_class.items())
        ],
        "gold_failures": [
            {
                "item_id": r.item_id,
                "gold_class": r.gold_class,
                "score": r.score,
                "qualification": bool(r.qualification),
                "at": iso(r.created_at),
            }
            for r in results
            if r.score < 1.0
        ][-20:],
        "fields": fields,
        "credible": CREDIBLE,
    }


def refit_models(
    conn: Connection, project: Project, *, now: float, actor_id: int | None
) -> dict[str, Any]:
    """Refit the project's annotator models (and refresh cached label confidences); audited."""
    models = fit_annotator_models(conn, project, now=now)
    if project.adaptive:  # new confidences may close or reopen items
        reopen_items(conn, project.id)
    fields = [
        {
            "field": fm.field,
            "kind": fm.kind,
            "n_annotations": fm.n_annotations,
            "n_annotators": len(fm.classes.annotators) if fm.classes else len(fm.weights),
        }
        for fm in models.fields.values()
    ]
    summary = {"project_id": project.id, "fitted_at": iso(now), "fields": fields}
    audit.record(
        conn,
        action="quality.refit",
        target=f"project:{project.id}",
        now=now,
        workspace_id=project.workspace_id,
        actor_id=actor_id,
        details={fm.field: fm.n_annotations for fm in models.fields.values()},
    )
    return summary


def projects_due_for_refit(conn: Connection, now: float, every: float) -> list[int]:
    """Adaptive projects with annotations newer than their models, last fitted over
    ``every`` seconds ago (or never)."""
    rows = conn.execute(
        text(
            "SELECT id FROM (SELECT p.id, "
            "(SELECT a.created_at FROM annotations a WHERE a.project_id = p.id "
            "ORDER BY a.id DESC LIMIT 1) AS newest, "
            "COALESCE((SELECT MAX(m.fitted_at) FROM annotator_models m "
            "WHERE m.project_id = p.id), 0) AS fitted "
            "FROM projects p WHERE p.max_overlap > p.overlap) t "
            "WHERE newest > fitted AND fitted < :since"
        ),
        {"since": now - every},
    )
    return [int(r[0]) for r in rows]
