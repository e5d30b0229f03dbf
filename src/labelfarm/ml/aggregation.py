"""Aggregation of categorical labels from several annotators into one label per item.

Two methods, both on the long-format arrays of :mod:`labelfarm.ml.labels`:

- :func:`majority_vote`: (weighted) plurality, ties broken towards the lowest class index;
- :func:`dawid_skene`: the Dawid-Skene (1979) EM estimate of per-annotator confusion matrices
  and item posteriors, with Dirichlet pseudo-counts from a population prior fitted to the
  crowd (:mod:`labelfarm.ml.annotator_prior`) so annotators with few labels are not
  over-trusted, the class balance damped towards and checked against the majority vote's
  (:mod:`labelfarm.ml.class_balance`), and gold items clamped to their known class. The EM
  rounds themselves are in :mod:`labelfarm.ml.dawid_skene_em`.

:func:`get_annotator_accuracy` reduces the confusion matrices to one accuracy per annotator
(the "one-coin" view of each annotator).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from labelfarm.ml.annotator_prior import AnnotatorPrior, fixed_prior
from labelfarm.ml.class_balance import BALANCE_TOLERANCE
from labelfarm.ml.dawid_skene_em import EmFit, EmInput, fit_em
from labelfarm.ml.labels import (
    FloatArray,
    IntArray,
    count_matrix,
    validate_annotations,
    validate_weights,
)

__all__ = [
    "DawidSkeneResult",
    "dawid_skene",
    "get_annotator_accuracy",
    "majority_vote",
]


def _weighted_counts(
    items: IntArray,
    annotators: IntArray,
    labels: IntArray,
    weights: FloatArray,
    *,
    n_items: int,
    n_classes: int,
) -> FloatArray:
    return count_matrix(
        items, labels, n_items=n_items, n_classes=n_classes, annotation_weights=weights[annotators]
    )


def majority_vote(
    items: npt.ArrayLike,
    annotators: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    n_items: int,
    n_classes: int,
    weights: npt.ArrayLike | None = None,
    rng_tiebreak: np.random.Generator | None = None,
) -> tuple[IntArray, FloatArray]:
    """Return ``(labels, confidence)`` per item by (weighted) plurality vote.

    ``weights`` has one non-negative weight per annotator, shape ``(n_annotators,)`` indexed
    by annotator; ``None`` gives every annotator weight 1. The confidence of an item is the
    weight share of its winning class, in [0, 1].

    Ties are broken deterministically towards the **lowest class index**, unless
    ``rng_tiebreak`` (a ``numpy.random.Generator``) is given, in which case a tied class is
    drawn uniformly. Items with no labels (or zero total weight) get label ``-1`` and
    confidence ``0.0``.
    """
    it, an, lb = validate_annotations(
        items, annotators, labels, n_items=n_items, n_classes=n_classes
    )
    n_annotators = int(an.max()) + 1 if an.size else 0
    w = validate_weights(weights, n_annotators=n_annotators)
    counts = _weighted_counts(it, an, lb, w, n_items=n_items, n_classes=n_classes)
    total = counts.sum(axis=1)
    if rng_tiebreak is None:
        winner = counts.argmax(axis=1)
    else:
        is_max = counts == counts.max(axis=1, keepdims=True)
        noise = rng_tiebreak.random(counts.shape)
        winner = np.where(is_max, noise, -1.0).argmax(axis=1)
    has_votes = total > 0
    safe_total = np.where(has_votes, total, 1.0)
    confidence = np.where(has_votes, counts[np.arange(n_items), winner] / safe_total, 0.0)
    out_labels = np.where(has_votes, winner, -1).astype(np.int64)
    return out_labels, confidence.astype(np.float64)


@dataclass(frozen=True)
class DawidSkeneResult:
    """The outcome of :func:`dawid_skene`.

    ``posteriors`` is ``(n_items, n_classes)``; ``labels`` and ``confidence`` are the argmax
    and max of each row (``-1`` and ``0.0`` for items with no labels and no gold, whose
    posterior row is the class prior); ``confusion[a, k, l]`` is the estimated probability
    that annotator ``a`` answers ``l`` when the true class is ``k``; ``prior`` is the
    annotators' population prior that was used (fitted, or the fixed one).
    """

    posteriors: FloatArray
    labels: IntArray
    confidence: FloatArray
    confusion: FloatArray
    class_priors: FloatArray
    n_iter: int
    converged: bool
    log_likelihood: float
    prior: AnnotatorPrior


def _gold_array(
    gold: Mapping[int, int] | npt.ArrayLike | None, *, n_items: int, n_classes: int
) -> IntArray:
    if gold is None:
        return np.full(n_items, -1, dtype=np.int64)
    if isinstance(gold, Mapping):
        out = np.full(n_items, -1, dtype=np.int64)
        for item, cls in gold.items():
            if not 0 <= int(item) < n_items:
                raise ValueError(f"gold item {item} is outside 0..{n_items - 1}")
            if not 0 <= int(cls) < n_classes:
                raise ValueError(f"gold class {cls} of item {item} is outside 0..{n_classes - 1}")
            out[int(item)] = int(cls)
        return out
    arr = np.asarray(gold)
    if arr.shape != (n_items,):
        raise ValueError(
            f"gold must be a mapping item -> class or an array of shape (n_items,) = "
            f"({n_items},) with -1 for unknown, got shape {arr.shape}"
        )
    if arr.dtype.kind not in "iu" or (arr.size and not (-1 <= arr.min() <= arr.max() < n_classes)):
        raise ValueError(f"gold must hold class indexes in 0..{n_classes - 1}, or -1 for unknown")
    return arr.astype(np.int64)


def _initial_posteriors(
    counts: FloatArray, *, is_gold: npt.NDArray[np.bool_], gold_onehot: FloatArray
) -> FloatArray:
    """The soft majority vote of each item (uniform with no votes), gold items clamped."""
    n_classes = counts.shape[1]
    total = counts.sum(axis=1, keepdims=True)
    post = np.where(total > 0, counts / np.where(total > 0, total, 1.0), 1.0 / n_classes)
    post[is_gold] = gold_onehot
    return post


def _em_result(
    fit: EmFit, *, has_labels: npt.NDArray[np.bool_], is_gold: npt.NDArray[np.bool_]
) -> DawidSkeneResult:
    """The fit as returned to callers: labels and confidence read off the posteriors
    (``-1`` and ``0.0`` for items with no labels and no gold), and the log-likelihood of
    the labelled, non-gold items."""
    post = fit.posteriors
    log_likelihood = float(fit.log_norm[has_labels & ~is_gold].sum())
    confidence = post.max(axis=1)
    out_labels = post.argmax(axis=1).astype(np.int64)
    unknown = ~has_labels & ~is_gold
    out_labels[unknown] = -1
    confidence[unknown] = 0.0
    return DawidSkeneResult(
        posteriors=post,
        labels=out_labels,
        confidence=confidence,
        confusion=fit.confusion,
        class_priors=fit.class_priors,
        n_iter=fit.n_iter,
        converged=fit.converged,
        log_likelihood=log_likelihood,
        prior=fit.prior,
    )


def _check_options(
    prior_strength: float, prior_accuracy: float, class_prior_strength: float, damping: float
) -> None:
    if min(prior_strength, class_prior_strength, damping) < 0:
        raise ValueError("prior_strength, class_prior_strength and balance_damping must be >= 0")
    if not 0.0 <= prior_accuracy <= 1.0:
        raise ValueError(f"prior_accuracy must be in [0, 1], got {prior_accuracy}")


def dawid_skene(
    items: npt.ArrayLike,
    annotators: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    n_items: int,
    n_classes: int,
    n_annotators: int,
    prior_strength: float = 2.0,
    prior_accuracy: float = 0.7,
    fit_prior: bool = True,
    class_prior_strength: float = 1.0,
    balance_damping: float = 1.0,
    balance_tolerance: float | None = BALANCE_TOLERANCE,
    gold: Mapping[int, int] | npt.ArrayLike | None = None,
    weights: npt.ArrayLike | None = None,
    max_iter: int = 100,
    tol: float = 1e-6,
) -> DawidSkeneResult:
    """Estimate item posteriors and annotator confusion matrices by Dawid-Skene EM.

    Each annotator ``a`` has a confusion matrix ``confusion[a]`` (rows: true class, columns:
    given label). The M-step is a MAP estimate: every row ``k`` gets Dirichlet pseudo-counts
    from a population prior (:mod:`labelfarm.ml.annotator_prior`), so an annotator with few
    labels stays close to what the crowd does instead of being trusted (or distrusted) fully.

    With ``fit_prior`` (the default) that prior is fitted by empirical Bayes: the crowd's
    pooled accuracy on the diagonal, a strength per row that maximises the annotators'
    Dirichlet-multinomial marginal likelihood, estimated in a second stage from where EM with
    the fixed prior ended (each stage up to ``max_iter`` rounds); ``prior_strength`` pseudo-
    counts at ``prior_accuracy`` are then a weak hyperprior. With ``fit_prior=False`` every
    row gets exactly those pseudo-counts (the former behaviour).

    Class priors get ``class_prior_strength`` pseudo-counts per class plus ``balance_damping``
    times the number of items with labels or gold, in the proportions of the soft majority
    vote's balance (``0``: the former behaviour). Then the balance is checked: beyond
    ``balance_tolerance`` (total variation) from the majority vote's, the class priors are
    shifted onto that edge (:mod:`labelfarm.ml.class_balance`; ``None``: no check), so the
    balance never collapses. ``log_likelihood`` is the fit's before any such shift.

    EM starts from the soft (``weights``-weighted, one weight per annotator) majority vote.
    ``gold`` (a mapping item -> class, or an ``(n_items,)`` array with ``-1`` for unknown)
    clamps those items to their known class throughout, so they seed the confusion
    estimates. The E-step runs in log space. Iteration stops when no posterior moves by more
    than ``tol`` or after ``max_iter`` rounds (one round is an M-step then an E-step).
    """
    it, an, lb = validate_annotations(
        items, annotators, labels, n_items=n_items, n_annotators=n_annotators, n_classes=n_classes
    )
    _check_options(prior_strength, prior_accuracy, class_prior_strength, balance_damping)
    if max_iter < 1 or tol < 0:
        raise ValueError("max_iter must be >= 1 and tol >= 0")
    w = validate_weights(weights, n_annotators=n_annotators)
    gold_cls = _gold_array(gold, n_items=n_items, n_classes=n_classes)
    is_gold = gold_cls >= 0
    gold_onehot = np.eye(n_classes)[gold_cls[is_gold]]
    counts = _weighted_counts(it, an, lb, w, n_items=n_items, n_classes=n_classes)
    has_labels = np.bincount(it, minlength=n_items) > 0
    start = _initial_posteriors(counts, is_gold=is_gold, gold_onehot=gold_onehot)
    known = has_labels | is_gold
    balance = start[known].sum(axis=0) if known.any() else np.ones(n_classes)
    balance = (balance + 1e-9) / (balance + 1e-9).sum()
    em = EmInput(
        it,
        an,
        lb,
        known=known,
        is_gold=is_gold,
        gold_onehot=gold_onehot,
        n_annotators=n_annotators,
        prior=fixed_prior(n_classes, prior_strength, prior_accuracy),
        fit_prior=fit_prior,
        class_pseudo=class_prior_strength + balance_damping * known.sum() * balance,
    )
    fit = fit_em(start, em, max_iter=max_iter, tol=tol, balance_tolerance=balance_tolerance)
    return _em_result(fit, has_labels=has_labels, is_gold=is_gold)


def get_annotator_accuracy(
    confusion: npt.ArrayLike, *, class_priors: npt.ArrayLike | None = None
) -> FloatArray:
    """Return each annotator's accuracy, shape ``(n_annotators,)``, in [0, 1].

    ``confusion`` is ``(n_annotators, n_classes, n_classes)`` with rows summing to 1 (as in
    :class:`DawidSkeneResult`). The accuracy is ``sum_k prior_k * confusion[a, k, k]``, the
    probability that the annotator is right on a random item; with ``class_priors=None`` the
    classes are weighted equally (the mean of the diagonal).
    """
    conf = np.asarray(confusion, dtype=np.float64)
    if conf.ndim != 3 or conf.shape[1] != conf.shape[2]:
        raise ValueError(
            f"confusion must have shape (n_annotators, n_classes, n_classes), got {conf.shape}"
        )
    n_classes = conf.shape[1]
    if class_priors is None:
        pri = np.full(n_classes, 1.0 / n_classes)
    else:
        pri = np.asarray(class_priors, dtype=np.float64)
        if pri.shape != (n_classes,) or np.any(pri < 0) or not np.isclose(pri.sum(), 1.0):
            raise ValueError(
                f"class_priors must have shape (n_classes,) = ({n_classes},), be >= 0 and "
                f"sum to 1, got shape {pri.shape}"
            )
    diag = np.diagonal(conf, axis1=1, axis2=2)
    return np.clip(diag @ pri, 0.0, 1.0)
