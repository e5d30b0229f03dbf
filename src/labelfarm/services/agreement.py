"""Agreement between annotators, per field of a project: the field section of the quality
report (:mod:`labelfarm.services.quality`).

Which labels are compared (:func:`agreement_sample`): every label, except with adaptive
overlap. There an item gets a label beyond its minimum ``overlap`` *because* its first
labels disagreed, so the items with exactly ``overlap`` labels are the ones that agreed and
the extra labels sit on the ones that did not: any coefficient over them measures the
selection, not the annotators. With adaptive overlap, agreement is measured on each item's
first ``overlap`` labels (in the order the annotators first submitted), which every item
gets whatever its labels say; with adaptive overlap from a single label it cannot be
measured at all (a second label is only asked for when the first is doubtful).

On that sample:

- Krippendorff's alpha (``nominal`` for choice and, per option, multichoice; ``interval``
  for number and rating), the headline coefficient: it is defined for any number of labels
  per item (each item's pairs weighted by 1 / (labels - 1)) and, with the same number on
  every item, is Fleiss' kappa with a small-sample correction;
- Fleiss' kappa, which needs the same number of labels on every item, on the items with the
  most common number in the sample (the report says which number and how many items), per
  class Fleiss' kappa and specific agreement (defined for any number per item);
- for every field type, the mean pairwise similarity of the field type (``similarity``)
  between annotators on the same item, overall and per annotator;
- for choice fields, the pairwise agreement matrix of annotators (up to ``MAX_MATRIX``).

The class confusion of choice fields counts every label (it compares answers with a
reference, it is not an agreement figure): rows are the reference class (gold, else the
reviewer's decision, else the Dawid-Skene consensus), columns the annotators' answers.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from labelfarm import ml
from labelfarm.ml.agreement import Level
from labelfarm.ml.labels import FloatArray
from labelfarm.schema import FieldType
from labelfarm.services.annotator_models import AnnotatorModels
from labelfarm.services.project_labels import ProjectLabels

MAX_MATRIX = 50  # annotators beyond which the pairwise matrix is left out of the report
_INTERVAL_TYPES = frozenset({"number", "rating"})

Votes = dict[int, list[tuple[int, Any]]]  # item -> [(user, answer), ...]


@dataclass(frozen=True)
class AgreementSample:
    """The labels agreement is measured on: ``basis`` is ``"all"`` (every label), ``"first"``
    (each item's first ``labels_per_item`` labels, adaptive overlap) or ``"none"`` (not
    measurable: adaptive overlap from one label); ``n_left_out`` labels are not compared."""

    labels: ProjectLabels
    basis: Literal["all", "first", "none"]
    labels_per_item: int | None
    n_left_out: int

    def summary(self) -> dict[str, Any]:
        return {
            "basis": self.basis,
            "labels_per_item": self.labels_per_item,
            "n_left_out": self.n_left_out,
        }


def agreement_sample(data: ProjectLabels, *, overlap: int, max_overlap: int) -> AgreementSample:
    """The labels of ``data`` that agreement may be measured on (see the module docstring)."""
    if max_overlap <= overlap:
        return AgreementSample(data, "all", None, 0)
    if overlap < 2:
        nothing = replace(data, latest={})
        return AgreementSample(nothing, "none", overlap, len(data.latest))
    taken: Counter[int] = Counter()
    kept: dict[tuple[int, int], dict[str, Any]] = {}
    # ``latest`` is in the order of each annotator's first annotation of the item
    for (item, user), value in data.latest.items():
        if taken[item] < overlap:
            kept[(item, user)] = value
            taken[item] += 1
    sample = replace(data, latest=kept)
    return AgreementSample(sample, "first", overlap, len(data.latest) - len(kept))


def json_number(x: float | None) -> float | None:
    """JSON-safe: NaN (an undefined coefficient) becomes None."""
    return None if x is None or not np.isfinite(x) else round(float(x), 6)


# -- coefficients ------------------------------------------------------------------------------
def _compact_reliability(groups: Sequence[Sequence[float]]) -> FloatArray:
    """A ``(max raters, n_units)`` value matrix: alpha depends only on each unit's values,
    not on who gave them, so this is as good as annotators x units and much smaller."""
    width = max((len(g) for g in groups), default=0)
    data = np.full((width, len(groups)), np.nan)
    for j, g in enumerate(groups):
        data[: len(g), j] = g
    return data


def _alpha(groups: Sequence[Sequence[float]], level: Level = "nominal") -> float | None:
    """Krippendorff's alpha of the units' values; None when undefined (or no unit)."""
    if not groups:
        return None
    return json_number(ml.krippendorff_alpha(_compact_reliability(groups), level=level))


def _categorical(f: FieldType, by_item: Votes) -> dict[str, Any]:
    classes = list(getattr(f, "options", ()))
    index = {c: k for k, c in enumerate(classes)}
    groups = [[index[v] for _, v in votes if v in index] for votes in by_item.values()]
    groups = [g for g in groups if len(g) >= 2]
    out: dict[str, Any] = {"level": "nominal", "n_items": len(groups)}
    if not groups:
        return {**out, "krippendorff_alpha": None, "fleiss_kappa": None, "per_class": []}
    out["krippendorff_alpha"] = _alpha(groups)
    counts = np.zeros((len(groups), len(classes)))
    for i, g in enumerate(groups):
        np.add.at(counts[i], g, 1.0)
    raters = counts.sum(axis=1)
    modal = Counter(raters.tolist()).most_common(1)[0][0]
    same = counts[raters == modal]
    fleiss = ml.fleiss_kappa(same)
    specific = ml.specific_agreement(counts)
    out["fleiss_kappa"] = json_number(fleiss.kappa)
    out["fleiss_items"] = int(same.shape[0])
    out["fleiss_raters"] = int(modal)
    out["per_class"] = [
        {
            "class": c,
            "n": int(counts[:, k].sum()),
            "fleiss_kappa": json_number(fleiss.per_category[k]),
            "specific_agreement": json_number(specific[k]),
        }
        for k, c in enumerate(classes)
    ]
    return out


def _multichoice(f: FieldType, by_item: Votes) -> dict[str, Any]:
    options = list(getattr(f, "options", ()))
    groups = [votes for votes in by_item.values() if len(votes) >= 2]
    per_option, pooled = [], []
    for option in options:
        units = [[float(option in v) for _, v in votes] for votes in groups]
        pooled.extend(units)
        chosen = sum(sum(u) for u in units)
        per_option.append({"class": option, "n": int(chosen), "krippendorff_alpha": _alpha(units)})
    return {
        "level": "nominal, per option",
        "n_items": len(groups),
        "krippendorff_alpha": _alpha(pooled),
        "per_class": per_option,
    }


def _interval(f: FieldType, by_item: Votes) -> dict[str, Any]:
    groups = [[float(v) for _, v in votes] for votes in by_item.values() if len(votes) >= 2]
    return {
        "level": "interval",
        "n_items": len(groups),
        "krippendorff_alpha": _alpha(groups, level="interval"),
    }


def per_annotator_similarity(
    f: FieldType, by_item: Votes
) -> tuple[dict[int, float], float | None, int]:
    """Mean similarity of each annotator to co-annotators on shared items; the overall mean
    and the number of pairs."""
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


def _pairwise_matrix(f: FieldType, by_item: Votes, people: dict[int, dict]) -> dict[str, Any]:
    users = sorted(people)
    uix = {u: n for n, u in enumerate(users)}
    index = {c: k for k, c in enumerate(getattr(f, "options", ()))}
    rows = [
        (n, uix[u], index[v])
        for n, votes in enumerate(by_item.values())
        for u, v in votes
        if v in index and u in uix
    ]
    annotators = [people[u]["annotator"] for u in users]
    if not rows:
        return {"annotators": annotators, "agreement": [], "n_shared": []}
    arr = np.array(rows, dtype=np.int64)
    pw = ml.pairwise_agreement(arr[:, 0], arr[:, 1], arr[:, 2], n_annotators=len(users))
    return {
        "annotators": annotators,
        "agreement": [[json_number(x) for x in row] for row in pw.agreement.tolist()],
        "n_shared": pw.n_shared.tolist(),
    }


# -- confusion ---------------------------------------------------------------------------------
def _confusion(
    f: FieldType, by_item: Votes, data: ProjectLabels, models: AnnotatorModels
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


# -- the field's section -----------------------------------------------------------------------
def field_report(
    f: FieldType,
    sample: AgreementSample,
    models: AnnotatorModels,
    people: dict[int, dict],
    *,
    every_label: ProjectLabels,
) -> tuple[dict[str, Any], dict[int, float]]:
    """The field's agreement section of the project report, measured on ``sample``, and each
    annotator's mean similarity to co-annotators on the field; the confusion of a choice
    field counts ``every_label``."""
    by_item = sample.labels.by_item(f.name)
    report: dict[str, Any] = {"field": f.name, "type": f.type_name}
    if f.type_name == "choice":
        report.update(_categorical(f, by_item))
        report["confusion"] = _confusion(f, every_label.by_item(f.name), every_label, models)
    elif f.type_name == "multichoice":
        report.update(_multichoice(f, by_item))
    elif f.type_name in _INTERVAL_TYPES:
        report.update(_interval(f, by_item))
    per_annotator, mean_similarity, n_pairs = per_annotator_similarity(f, by_item)
    report["mean_pairwise_similarity"] = json_number(mean_similarity)
    report["n_pairs"] = n_pairs
    if f.type_name == "choice" and len(people) <= MAX_MATRIX:
        report["pairwise"] = _pairwise_matrix(f, by_item, people)
    return report, per_annotator
