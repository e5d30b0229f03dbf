"""From a project's labelled items and their out-of-sample probabilities to ranked suspects:
the annotators' votes and confusion matrices put in the arrays of
:func:`labelfarm.ml.label_errors.detect_label_errors`, and each suspect's reason written
for the reviewer ("model says coat 0.97; 1 annotator (reliability 0.61) said shirt").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from labelfarm.ml.label_errors import LabelErrors, detect_label_errors, noise_channel
from labelfarm.services.annotator_models import ClassModel
from labelfarm.services.models.training import AGGREGATED, Example


@dataclass(frozen=True)
class Vote:
    item_id: int
    user_id: int
    value: Any  # the annotator's answer for the field (an option name)


@dataclass(frozen=True)
class Suspect:
    item_id: int
    label: str
    suggested: str
    score: float
    reason: dict[str, Any]


def _votes(
    model: ClassModel, examples: Sequence[Example], votes: Sequence[Vote]
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], list[int]]:
    """Votes as index arrays (item row, annotator, answer), and the annotators' user ids in
    index order. Only items whose label came from annotations (aggregated) carry votes: a
    reviewer's decision is not theirs."""
    row = {e.item_id: n for n, e in enumerate(examples) if e.source == AGGREGATED}
    users: dict[int, int] = {}
    items, who, said = [], [], []
    for v in votes:
        index = model.index(v.value)
        if v.item_id not in row or index is None:
            continue
        items.append(row[v.item_id])
        who.append(users.setdefault(v.user_id, len(users)))
        said.append(index)
    arrays = (np.asarray(items, np.int64), np.asarray(who, np.int64), np.asarray(said, np.int64))
    return arrays, list(users)


def detect(
    model: ClassModel,
    field: str,
    examples: Sequence[Example],
    proba: np.ndarray,
    votes: Sequence[Vote],
) -> LabelErrors:
    """Every example's label scored. When the annotators' Dawid-Skene model knows some of
    the voters (it was fitted on items with several labels), their confusion matrices are
    the likelihood of the votes, and a voter it does not know errs as confident learning
    estimates the labels do (the noise channel); otherwise (one label per item, nothing
    fitted) the label is scored by confident learning alone."""
    labels = np.asarray([model.index(e.label.get(field)) for e in examples], dtype=np.int64)
    arrays, users = _votes(model, examples, votes)
    fitted = [model.annotators.get(u) for u in users]
    if all(f is None for f in fitted):
        found = detect_label_errors(proba, labels)
        return _with_votes(found, labels, arrays, model, users)
    channel = noise_channel(proba, labels)
    confusion = np.stack([channel if f is None else model.confusion[f] for f in fitted])
    return detect_label_errors(proba, labels, votes=arrays, confusion=confusion)


def _with_votes(
    found: LabelErrors,
    labels: np.ndarray,
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray],
    model: ClassModel,
    users: list[int],
) -> LabelErrors:
    """Single-label results with the votes' counts for the reason: how many annotators
    answered, the share for the label, the fitted accuracy of those who gave it (NaN for
    annotators without a fitted model)."""
    items, who, said = arrays
    n = len(labels)
    n_votes = np.bincount(items, minlength=n).astype(np.int64)
    same = said == labels[items]
    accuracy = np.array(
        [model.accuracy.get(u, np.nan) if u in model.annotators else np.nan for u in users]
    )
    agree = np.bincount(items, weights=same.astype(np.float64), minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(n_votes > 0, agree / np.maximum(n_votes, 1), np.nan)
        acc = np.bincount(items, weights=np.where(same, accuracy[who], 0.0), minlength=n)
        reliability = np.where(agree > 0, acc / np.maximum(agree, 1.0), np.nan)
    return replace(found, n_votes=n_votes, agreement=share, label_reliability=reliability)


def rank_suspects(
    model: ClassModel,
    field: str,
    examples: Sequence[Example],
    proba: np.ndarray,
    votes: Sequence[Vote],
    *,
    top: int,
    skip: frozenset[tuple[int, str]] = frozenset(),
) -> tuple[list[Suspect], LabelErrors]:
    """The ``top`` items flagged as label issues, most likely wrong first: only items whose
    label came from annotations (a reviewer already decided the others), never an item whose
    current label a reviewer already kept (``skip``: (item id, label) pairs)."""
    classes = model.classes
    found = detect(model, field, examples, proba, votes)
    order = np.argsort(-found.score, kind="stable")
    out: list[Suspect] = []
    for n in order:
        e = examples[int(n)]
        label = e.label.get(field)
        if not found.is_issue[n] or e.source != AGGREGATED or (e.item_id, label) in skip:
            continue
        suggested = classes[int(found.model_class[n])]
        reason = _reason(found, int(n), str(label), suggested)
        out.append(
            Suspect(e.item_id, str(label), suggested, round(float(found.score[n]), 6), reason)
        )
        if len(out) >= top:
            break
    return out, found


def _reason(found: LabelErrors, n: int, label: str, suggested: str) -> dict[str, Any]:
    confidence = round(float(found.model_confidence[n]), 4)
    votes = int(found.n_votes[n])
    agreement = float(found.agreement[n]) if votes else None
    reliability = float(found.label_reliability[n])
    known = bool(np.isfinite(reliability))
    backers = round(agreement * votes) if agreement is not None else 0
    text = f"model says {suggested} {confidence:.2f}"
    if backers:
        who = "annotator" if backers == 1 else "annotators"
        how = f" (reliability {reliability:.2f})" if known else ""
        text += f"; {backers} {who}{how} said {label}"
        if backers < votes:
            text += f", {votes - backers} said otherwise"
    elif votes:
        text += f"; none of {votes} annotators said {label}"
    return {
        "text": text,
        "label": label,
        "model_class": suggested,
        "model_confidence": confidence,
        "n_annotators": votes,
        "agreement": round(agreement, 4) if agreement is not None else None,
        "reliability": round(reliability, 4) if backers and known else None,
        "score": round(float(found.score[n]), 4),
        "model_weight": found.model_weight,
    }
