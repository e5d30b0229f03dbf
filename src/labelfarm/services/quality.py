"""Quality reports: a project's, and one annotator's.

Per project and field: the agreement between annotators (Krippendorff's alpha, Fleiss' kappa,
specific agreement, pairwise similarity and agreement) and the class confusion of choice
fields, from :mod:`labelfarm.services.agreement`.

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
from sqlalchemy import text

from labelfarm import ml
from labelfarm.db.tables import MAX_INT
from labelfarm.db.tx import CoreTx, transaction
from labelfarm.errors import NotFound
from labelfarm.jsonutil import iso, loads
from labelfarm.services.agreement import (
    agreement_sample,
    field_report,
    json_number,
    per_annotator_similarity,
)
from labelfarm.services.annotator_models import AnnotatorModels, load_annotator_models
from labelfarm.services.project_labels import read_project_labels
from labelfarm.services.projects import Project
from labelfarm.services.tasks.standing_history import history, public_evidence

CREDIBLE = 0.9
RECENT_FAILURES = 20  # gold failures on an annotator's page

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


def _gold_accuracy(results: Sequence[Any]) -> dict[str, float | int | None]:
    """:func:`_beta` of scored gold answers (rows of ``gold_results``)."""
    return _beta(sum(r.score for r in results), len(results))


def _people(tx: CoreTx, project_id: int, identities: bool) -> dict[int, dict[str, Any]]:
    out = {}
    for r in tx.execute(_PEOPLE, {"p": project_id}):
        person: dict[str, Any] = {"annotator": r.pseudonym}
        if identities:
            person.update(user_id=r.id, display_name=r.display_name)
        out[r.id] = person
    return out


def _gold_by_user(tx: CoreTx, project_id: int) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = defaultdict(list)
    for r in tx.execute(_GOLD, {"p": project_id}):
        out[r.user_id].append(r)
    return out


def _statuses(tx: CoreTx, project_id: int, identities: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for r in tx.execute(_STATUS, {"p": project_id}):
        row: dict[str, Any] = {
            "annotator": r.pseudonym,
            "state": r.state,
            "reason": r.reason,
            "evidence": public_evidence(loads(r.evidence)) if r.evidence else {},
            "since": iso(r.updated_at),
        }
        if identities:
            row.update(user_id=r.user_id, display_name=r.display_name)
        out.append(row)
    return out


@transaction("read")
def project_report(tx: CoreTx, project: Project, *, identities: bool = False) -> dict[str, Any]:
    """The project's quality report (see the module docstring)."""
    data = read_project_labels(tx, project.id)
    sample = agreement_sample(data, overlap=project.overlap, max_overlap=project.max_overlap)
    models = load_annotator_models(tx, project.id)
    people = _people(tx, project.id, identities)
    fields, agreement_of = [], {}
    for f in project.schema.fields:
        report, per_annotator = field_report(f, sample, models, people, every_label=data)
        fields.append(report)
        agreement_of[f.name] = per_annotator
    gold = _gold_by_user(tx, project.id)
    statuses = _statuses(tx, project.id, identities)
    state_of = {s["annotator"]: s["state"] for s in statuses}
    n_by_user = Counter(user for _, user in data.latest)
    annotators = []
    for user, person in sorted(people.items(), key=lambda kv: kv[1]["annotator"]):
        annotators.append(
            {
                **person,
                "n_items": n_by_user.get(user, 0),
                "agreement": {
                    name: json_number(per[user])
                    for name, per in agreement_of.items()
                    if user in per
                },
                "gold": _gold_accuracy(gold.get(user, [])),
                "model_accuracy": _model_accuracy(models, user),
                "state": state_of.get(person["annotator"], "active"),
            }
        )
    every_gold = [r for results in gold.values() for r in results]
    return {
        "project_id": project.id,
        "n_items": len({item for item, _ in data.latest}),
        "n_annotations": len(data.latest),
        "n_annotators": len(people),
        "n_gold_results": len(every_gold),
        "gold": _gold_accuracy(every_gold),
        "agreement_sample": sample.summary(),
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
            out[name] = json_number(fm.classes.accuracy[user])
    return out


def resolve_annotator(tx: CoreTx, project: Project, who: str, *, allow_id: bool) -> int:
    """The user id of an annotator of the project, by pseudonym (or by id when allowed)."""
    if "\x00" in who:  # no name holds one (and PostgreSQL cannot compare text with one)
        raise NotFound(f"no annotator {who!r} in this project")
    row = tx.execute(text("SELECT id FROM users WHERE pseudonym = :who"), {"who": who}).first()
    # an id: decimal digits (int() reads every script's), no larger than an id can be
    if row is None and allow_id and who.isdecimal() and len(who) <= 10 and int(who) <= MAX_INT:
        row = tx.execute(text("SELECT id FROM users WHERE id = :id"), {"id": int(who)}).first()
    if row is not None:
        worked = tx.execute(
            text("SELECT 1 FROM annotations WHERE project_id = :p AND user_id = :u LIMIT 1"),
            {"p": project.id, "u": row.id},
        ).first()
        if worked is not None:
            return int(row.id)
    raise NotFound(f"no annotator {who!r} in this project")


@transaction("read")
def annotator_report(
    tx: CoreTx, project: Project, who: str, *, identities: bool = False
) -> dict[str, Any]:
    """One annotator's quality in the project: work, agreement, gold, model, standing.
    ``who`` is a pseudonym, or a user id when ``identities`` may be shown."""
    user_id = resolve_annotator(tx, project, who, allow_id=identities)
    data = read_project_labels(tx, project.id)
    sample = agreement_sample(data, overlap=project.overlap, max_overlap=project.max_overlap)
    models = load_annotator_models(tx, project.id)
    people = _people(tx, project.id, identities)
    if user_id not in people:
        raise NotFound("no such annotator in this project")
    fields = []
    for f in project.schema.fields:
        by_item = data.by_item(f.name)
        per, _, _ = per_annotator_similarity(f, sample.labels.by_item(f.name))
        entry: dict[str, Any] = {
            "field": f.name,
            "type": f.type_name,
            "n": sum(1 for votes in by_item.values() for u, _ in votes if u == user_id),
            "agreement": json_number(per[user_id]) if user_id in per else None,
        }
        fm = models.fields.get(f.name)
        if fm is not None and fm.classes is not None and user_id in fm.classes.annotators:
            row = fm.classes.annotators[user_id]
            entry["model_accuracy"] = json_number(fm.classes.accuracy.get(user_id, float("nan")))
            entry["confusion"] = {
                "classes": list(fm.classes.classes),
                "matrix": np.round(fm.classes.confusion[row], 4).tolist(),
            }
        if fm is not None and user_id in fm.weights:
            entry["weight"] = json_number(fm.weights[user_id])
        fields.append(entry)
    results = _gold_by_user(tx, project.id).get(user_id, [])
    per_class: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in results:
        if r.gold_class is not None:
            per_class[r.gold_class][0] += float(r.score >= 1.0 - 1e-9)
            per_class[r.gold_class][1] += 1.0
    status: dict[str, Any] = next(
        (
            s
            for s in _statuses(tx, project.id, identities)
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
        "gold": _gold_accuracy(results),
        "qualification": _gold_accuracy([r for r in results if r.qualification]),
        "gold_per_class": [
            {"class": c, **_beta(ok, n)} for c, (ok, n) in sorted(per_class.items())
        ],
        "gold_failures": [  # newest first
            {
                "item_id": r.item_id,
                "gold_class": r.gold_class,
                "score": r.score,
                "qualification": bool(r.qualification),
                "at": iso(r.created_at),
            }
            for r in reversed(results)
            if r.score < 1.0
        ][:RECENT_FAILURES],
        "fields": fields,
        "credible": CREDIBLE,
        "history": history(tx, project.id, user_id, identities=identities),
    }
