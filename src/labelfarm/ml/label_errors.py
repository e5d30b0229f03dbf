"""Label-error detection: which items' current labels are likely wrong.

Two pieces of evidence, both pure array math:

* **Confident learning** (Northcutt, Jiang and Chuang, 2021) on *out-of-sample* class
  probabilities ``proba`` (each item predicted by a model that never saw it). Per class, the
  threshold is the mean self-confidence of the items labelled that class
  (:func:`confident_thresholds`); the *confident joint* counts items whose label is ``i``
  and whose probability of class ``j`` clears ``j``'s threshold (:func:`confident_joint`),
  calibrated to the label counts; per label ``i`` and class ``j != i`` the ``C[i, j]`` items
  labelled ``i`` with the largest margin ``p_j - p_i`` are flagged ("prune by noise rate",
  :func:`noise_rate_issues`), never one the model predicts as its own label.
* **The annotators** (CROWDLAB-style, Goh, Gupta and Mueller, 2022): the model's probability
  is the prior and each annotator's answer a likelihood from its confusion matrix (a fitted
  Dawid-Skene model: ``confusion[a, true, answered]``), so one unreliable annotator against a
  confident model leaves the label weak, while several reliable annotators who agree keep it
  (:func:`crowd_posterior`). The model's weight is the exponent of its probability, fitted
  from how well it predicts the annotators (:func:`model_weight`).
* **Single labels** (no annotators known): the label is one vote whose "annotator" is the
  noise channel confident learning estimates, ``T[true, given]`` from the calibrated
  confident joint (:func:`noise_channel`).

:func:`detect_label_errors` returns, per item, the likelihood that its label is wrong
(``score``: 1 minus the label's posterior, with annotators or through the noise channel), an
``is_issue`` flag, and what the reason shows: the model's class and confidence and the
annotators' agreement with the label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from labelfarm.ml.labels import FloatArray, IntArray, as_index_array

__all__ = [
    "LabelErrors",
    "confident_joint",
    "confident_thresholds",
    "crowd_posterior",
    "detect_label_errors",
    "model_weight",
    "noise_channel",
    "noise_rate_issues",
    "self_confidence",
]

EPS = 1e-6
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class LabelErrors:
    """Per item: ``score`` (likelihood the label is wrong, in [0, 1]), ``is_issue``, the
    model's class and confidence, and (with annotators) the share of votes for the label,
    the number of votes and the mean accuracy of the annotators who gave the label (NaN
    when none did). ``posterior`` is the class posterior the score comes from."""

    score: FloatArray
    is_issue: BoolArray
    model_class: IntArray
    model_confidence: FloatArray
    agreement: FloatArray
    n_votes: IntArray
    label_reliability: FloatArray
    posterior: FloatArray
    model_weight: float


def _check(proba: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[FloatArray, IntArray]:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"proba must be (n_items, n_classes >= 2), got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError("proba must hold finite probabilities >= 0")
    y = as_index_array(labels, name="labels", upper=p.shape[1])
    if len(y) != len(p):
        raise ValueError(f"labels must have one entry per row of proba ({len(p)}), got {len(y)}")
    sums = p.sum(axis=1, keepdims=True)
    return p / np.where(sums > 0, sums, 1.0), y


def self_confidence(proba: npt.ArrayLike, labels: npt.ArrayLike) -> FloatArray:
    """The model's probability of each item's own label."""
    p, y = _check(proba, labels)
    return np.asarray(p[np.arange(len(y)), y], dtype=np.float64)


def confident_thresholds(proba: npt.ArrayLike, labels: npt.ArrayLike) -> FloatArray:
    """Per class, the mean self-confidence of the items labelled that class (a class no item
    carries gets threshold 1: nothing is confidently of it unless certain)."""
    p, y = _check(proba, labels)
    k = p.shape[1]
    counts = np.bincount(y, minlength=k).astype(np.float64)
    sums = np.bincount(y, weights=p[np.arange(len(y)), y], minlength=k)
    return np.where(counts > 0, sums / np.maximum(counts, 1.0), 1.0)


def _confident_class(p: FloatArray, thresholds: FloatArray) -> tuple[IntArray, BoolArray]:
    """Each item's confident class (the likeliest above its threshold) and whether any is."""
    above = p >= thresholds - 1e-6
    n_above = above.sum(axis=1)
    best_above = np.argmax(np.where(above, p, -1.0), axis=1)
    guess = np.where(n_above > 1, best_above, np.argmax(p, axis=1))
    return guess.astype(np.int64), n_above > 0


def round_preserving_row_totals(matrix: FloatArray) -> IntArray:
    """Round each row to integers keeping its (rounded) total: largest remainders first."""
    out = np.floor(matrix).astype(np.int64)
    totals = np.round(matrix.sum(axis=1)).astype(np.int64)
    for r in range(len(matrix)):
        short = int(totals[r] - out[r].sum())
        if short > 0:
            order = np.argsort(-(matrix[r] - np.floor(matrix[r])), kind="stable")
            out[r, order[:short]] += 1
    return out


def confident_joint(
    proba: npt.ArrayLike, labels: npt.ArrayLike, *, calibrate: bool = True
) -> IntArray:
    """The confident joint ``C[given, true]``: items labelled ``given`` whose confident class
    is ``true``; calibrated (rows scaled to the label counts, total to ``n``) by default."""
    p, y = _check(proba, labels)
    k = p.shape[1]
    guess, confident = _confident_class(p, confident_thresholds(p, y))
    joint = np.zeros((k, k), dtype=np.float64)
    np.add.at(joint, (y[confident], guess[confident]), 1.0)
    np.fill_diagonal(joint, np.maximum(np.diagonal(joint), 1.0))
    if not calibrate:
        return joint.astype(np.int64)
    counts = np.bincount(y, minlength=k).astype(np.float64)
    scaled = joint / joint.sum(axis=1, keepdims=True) * counts[:, None]
    scaled = scaled / max(scaled.sum(), EPS) * counts.sum()
    return round_preserving_row_totals(scaled)


def _prune_counts(joint: IntArray, keep: int = 1) -> IntArray:
    """How many items to flag per (true, given) pair: the joint transposed, each given
    class keeping at least ``keep`` items labelled correctly."""
    m = joint.T.astype(np.float64)
    diagonal = np.diagonal(m).copy()
    raised = np.maximum(diagonal, keep)
    per_col = np.maximum(np.count_nonzero(m, axis=0) - 1.0, 1.0)
    m = np.maximum(m - (raised - diagonal) / per_col, 0.0)
    np.fill_diagonal(m, raised)
    return round_preserving_row_totals(m)


def noise_rate_issues(proba: npt.ArrayLike, labels: npt.ArrayLike) -> BoolArray:
    """Confident learning's "prune by noise rate": per label ``i`` and class ``j != i``, the
    ``C[i, j]`` items labelled ``i`` with the largest margin ``p_j - p_i`` are issues, except
    items whose predicted class is their label."""
    p, y = _check(proba, labels)
    k = p.shape[1]
    prune = _prune_counts(confident_joint(p, y))
    counts = np.bincount(y, minlength=k)
    flagged = np.zeros(len(y), dtype=bool)
    for given in range(k):
        members = np.flatnonzero(y == given)
        if counts[given] <= 1:
            continue
        for true in range(k):
            n = int(prune[true, given])
            if true == given or n <= 0:
                continue
            margin = p[members, true] - p[members, given]
            n = min(n, len(members))
            cut = -np.partition(-margin, n - 1)[n - 1]
            flagged[members[margin >= cut]] = True
    flagged &= np.argmax(p, axis=1) != y
    return flagged


def _votes(
    votes: tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike], n: int, k: int, m: int
) -> tuple[IntArray, IntArray, IntArray]:
    items = as_index_array(votes[0], name="vote items", upper=n)
    who = as_index_array(votes[1], name="vote annotators", upper=m)
    said = as_index_array(votes[2], name="vote labels", upper=k)
    if not (len(items) == len(who) == len(said)):
        raise ValueError(
            "votes must be three arrays of the same length (items, annotators, labels)"
        )
    return items, who, said


def _check_confusion(confusion: npt.ArrayLike, k: int) -> FloatArray:
    c = np.asarray(confusion, dtype=np.float64)
    if c.ndim != 3 or c.shape[1:] != (k, k):
        raise ValueError(f"confusion must be (n_annotators, {k}, {k}), got shape {c.shape}")
    if not np.all(np.isfinite(c)) or np.any(c < 0):
        raise ValueError("confusion must hold finite probabilities >= 0")
    rows = c.sum(axis=2, keepdims=True)
    return np.asarray(np.clip(c / np.where(rows > 0, rows, 1.0), EPS, 1.0), dtype=np.float64)


def _annotator_log_likelihood(
    n: int, k: int, votes: tuple[IntArray, IntArray, IntArray], confusion: FloatArray
) -> FloatArray:
    """Per item and true class, the log-likelihood of its votes."""
    items, who, said = votes
    out = np.zeros((n, k), dtype=np.float64)
    np.add.at(out, items, np.log(confusion[who, :, said]))
    return out


def _softmax_rows(logits: FloatArray) -> FloatArray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray(z / z.sum(axis=1, keepdims=True), dtype=np.float64)


def crowd_posterior(
    proba: FloatArray, log_likelihood: FloatArray, weight: float = 1.0
) -> FloatArray:
    """Class posterior of each item: the model's probability to the power ``weight`` as
    the prior, times the annotators' likelihood."""
    return _softmax_rows(weight * np.log(np.clip(proba, EPS, 1.0)) + log_likelihood)


def model_weight(
    proba: FloatArray, log_likelihood: FloatArray, has_votes: BoolArray, grid: int = 21
) -> float:
    """The model's exponent in (0, 2] under which the annotators' votes are likeliest (their
    marginal likelihood with the tempered model as the prior), over a grid of ``grid``
    steps; 1 when no item has votes. A model the annotators often contradict gets a small
    weight, a sharp and right one a large one."""
    if not has_votes.any():
        return 1.0
    logp = np.log(np.clip(proba[has_votes], EPS, 1.0))
    lik = log_likelihood[has_votes]
    best, best_w = -np.inf, 1.0
    for w in np.linspace(0.0, 2.0, grid)[1:]:
        prior = _softmax_rows(w * logp)
        # evidence of the votes with the tempered model as the prior
        joint = np.log(np.clip(prior, 1e-300, 1.0)) + lik
        top = joint.max(axis=1, keepdims=True)
        value = float(np.sum(top[:, 0] + np.log(np.exp(joint - top).sum(axis=1))))
        if value > best:
            best, best_w = value, float(w)
    return best_w


def noise_channel(
    proba: npt.ArrayLike, labels: npt.ArrayLike, *, pseudo: float = 1.0
) -> FloatArray:
    """``T[true, given]``: the probability that an item of class ``true`` carries label
    ``given``, estimated from the calibrated confident joint (single labels' "annotator"),
    with ``pseudo`` counts in every cell so that no confusion is ever deemed impossible."""
    joint = confident_joint(proba, labels).astype(np.float64) + pseudo
    return np.asarray((joint / joint.sum(axis=0, keepdims=True)).T)


def detect_label_errors(
    proba: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    votes: tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike] | None = None,
    confusion: npt.ArrayLike | None = None,
    threshold: float | None = None,
) -> LabelErrors:
    """Score every item's label (see the module's text).

    ``proba``: ``(n, k)`` out-of-sample probabilities; ``labels``: ``(n,)`` current labels.
    ``votes``: ``(items, annotators, answers)`` index arrays (each annotator's newest
    answer) and ``confusion``: ``(n_annotators, k, k)``, rows true class, columns answer.

    Without votes the label itself is the one vote, its "annotator" the noise channel
    confident learning estimates (:func:`noise_channel`); an item is an issue when its
    label's posterior is below ``threshold`` (default 0.5). With votes, the annotators'
    confusion matrices are the likelihood and an item is an issue when its label's
    posterior is below ``threshold`` (default 0.6: Dawid-Skene's independent votes make
    the posterior overconfident) or confident learning on the posteriors flags it.
    """
    p, y = _check(proba, labels)
    n, k = p.shape
    cut = threshold if threshold is not None else (0.5 if votes is None else 0.6)
    if not 0.0 < cut < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    rows = np.arange(n)
    model_class = np.argmax(p, axis=1).astype(np.int64)
    agreement = np.full(n, np.nan)
    reliability = np.full(n, np.nan)
    n_votes = np.zeros(n, dtype=np.int64)
    weight = 1.0
    if votes is None:
        channel = noise_channel(p, y)
        posterior = crowd_posterior(p, np.log(np.clip(channel[:, y].T, EPS, 1.0)))
        flagged = posterior[rows, y] < cut
    else:
        if confusion is None:
            raise ValueError("votes need the annotators' confusion matrices")
        checked = _check_confusion(confusion, k)
        items, who, said = _votes(votes, n, k, len(checked))
        loglik = _annotator_log_likelihood(n, k, (items, who, said), checked)
        n_votes = np.bincount(items, minlength=n).astype(np.int64)
        weight = model_weight(p, loglik, n_votes > 0)
        posterior = crowd_posterior(p, loglik, weight)
        agreement, reliability = _agreement(n, y, items, who, said, checked)
        flagged = (posterior[rows, y] < cut) | noise_rate_issues(posterior, y)
    return LabelErrors(
        score=np.asarray(1.0 - posterior[rows, y], dtype=np.float64),
        is_issue=np.asarray(flagged, dtype=bool),
        model_class=model_class,
        model_confidence=np.asarray(p[rows, model_class], dtype=np.float64),
        agreement=agreement,
        n_votes=n_votes,
        label_reliability=reliability,
        posterior=posterior,
        model_weight=weight,
    )


def _agreement(
    n: int, y: IntArray, items: IntArray, who: IntArray, said: IntArray, confusion: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Per item: the share of its votes for its label, and the mean accuracy (the diagonal's
    mean) of the annotators who gave the label (NaN where none did)."""
    n_votes = np.bincount(items, minlength=n).astype(np.float64)
    same = said == y[items]
    agree = np.bincount(items, weights=same.astype(np.float64), minlength=n)
    accuracy = np.diagonal(confusion, axis1=1, axis2=2).mean(axis=1)
    acc_sum = np.bincount(items, weights=np.where(same, accuracy[who], 0.0), minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(n_votes > 0, agree / np.maximum(n_votes, 1.0), np.nan)
        mean_acc = np.where(agree > 0, acc_sum / np.maximum(agree, 1.0), np.nan)
    return share, mean_acc
