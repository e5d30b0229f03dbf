"""The EM rounds of Dawid-Skene (:func:`labelfarm.ml.aggregation.dawid_skene`): soft counts,
the MAP M-step (confusion matrices with the annotators' prior, class priors), the E-step in
log space, the loop (refitting the annotators' prior when asked) and the class-balance check.
Internal to :mod:`labelfarm.ml.aggregation`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from labelfarm.ml.annotator_prior import AnnotatorPrior, fit_annotator_prior
from labelfarm.ml.class_balance import limit_class_balance
from labelfarm.ml.labels import FloatArray, IntArray

LOG_FLOOR = 1e-300
PRIOR_ROUNDS = 50  # EM rounds that refit the annotators' population prior (then it is held)


def _soft_counts(
    post: FloatArray,
    items: IntArray,
    annotators: IntArray,
    labels: IntArray,
    *,
    n_annotators: int,
) -> FloatArray:
    """``counts[a, k, l]``: the posterior mass of class ``k`` on the items annotator ``a``
    labelled ``l``."""
    n_classes = post.shape[1]
    counts = np.empty((n_annotators, n_classes, n_classes))
    post_of_annotation = post[items]
    cell = annotators * n_classes + labels  # (annotator, given label) as one flat index
    for k in range(n_classes):
        flat = np.bincount(
            cell, weights=post_of_annotation[:, k], minlength=n_annotators * n_classes
        )
        counts[:, k, :] = flat.reshape(n_annotators, n_classes)
    return counts


def _class_priors(post: FloatArray, known: npt.NDArray[np.bool_], pseudo: FloatArray) -> FloatArray:
    """MAP class priors: the posterior mass of the items with labels or gold plus ``pseudo``."""
    priors = post[known].sum(axis=0) + pseudo
    n_classes = post.shape[1]
    return priors / priors.sum() if priors.sum() > 0 else np.full(n_classes, 1 / n_classes)


def _confusion(counts: FloatArray, pseudo: FloatArray) -> FloatArray:
    """MAP confusion matrices: each row's counts plus the prior's pseudo-counts, normalised."""
    n_classes = counts.shape[1]
    conf = counts + pseudo[None, :, :]
    row_sum = conf.sum(axis=2, keepdims=True)
    return np.where(row_sum > 0, conf / np.where(row_sum > 0, row_sum, 1.0), 1 / n_classes)


def _e_step(
    conf: FloatArray,
    priors: FloatArray,
    items: IntArray,
    annotators: IntArray,
    labels: IntArray,
    *,
    n_items: int,
    n_classes: int,
) -> tuple[FloatArray, FloatArray]:
    """``(posteriors, log_norm)``: each item's class posterior given the confusion matrices
    and class priors, computed in log space, and its log normaliser (a column)."""
    log_conf = np.log(np.maximum(conf, LOG_FLOOR))
    log_evidence = log_conf[annotators, :, labels]  # (n_annotations, n_classes)
    log_post = np.tile(np.log(np.maximum(priors, LOG_FLOOR)), (n_items, 1))
    for k in range(n_classes):
        log_post[:, k] += np.bincount(items, weights=log_evidence[:, k], minlength=n_items)
    log_norm = logsumexp_rows(log_post)
    return np.exp(log_post - log_norm), log_norm


class EmFit(NamedTuple):
    """Where the EM rounds of :func:`_run_em` ended."""

    posteriors: FloatArray
    class_priors: FloatArray
    confusion: FloatArray
    prior: AnnotatorPrior
    log_norm: FloatArray  # of the last E-step, one per item, as a column
    n_iter: int
    converged: bool


class EmInput(NamedTuple):
    """The data and options of one EM run."""

    items: IntArray
    annotators: IntArray
    labels: IntArray
    known: npt.NDArray[np.bool_]  # items with labels or gold
    is_gold: npt.NDArray[np.bool_]
    gold_onehot: FloatArray
    n_annotators: int
    prior: AnnotatorPrior  # the fixed prior, or the hyperprior of the fitted one
    fit_prior: bool
    class_pseudo: FloatArray  # (K,) pseudo-counts of the class priors


def run_em(post: FloatArray, em: EmInput, *, max_iter: int, tol: float) -> EmFit:
    """M-step then E-step (gold items clamped) from the posteriors ``post``, until no
    posterior moves by more than ``tol`` or ``max_iter`` rounds have run. With
    ``em.fit_prior`` every M-step first refits the annotators' population prior from the
    soft counts (for the first ``PRIOR_ROUNDS`` rounds; then it is held, so EM converges)."""
    n_items, n_classes = post.shape
    prior = em.prior
    converged = False
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        counts = _soft_counts(
            post, em.items, em.annotators, em.labels, n_annotators=em.n_annotators
        )
        if em.fit_prior and n_iter <= PRIOR_ROUNDS:
            prior = fit_annotator_prior(counts, base=em.prior.pseudo_counts)
        conf = _confusion(counts, prior.pseudo_counts)
        priors = _class_priors(post, em.known, em.class_pseudo)
        new_post, log_norm = _e_step(
            conf, priors, em.items, em.annotators, em.labels, n_items=n_items, n_classes=n_classes
        )
        new_post[em.is_gold] = em.gold_onehot
        delta = float(np.max(np.abs(new_post - post))) if n_items else 0.0
        post = new_post
        if delta <= tol:
            converged = True
            break
    return EmFit(post, priors, conf, prior, log_norm, n_iter, converged)


def checked_balance(fit: EmFit, start: FloatArray, em: EmInput, tolerance: float) -> EmFit:
    """The fit with its class priors shifted when the class balance of its labelled,
    non-gold items strays beyond ``tolerance`` from the majority vote's (``start``'s):
    :func:`labelfarm.ml.class_balance.limit_class_balance`."""
    free = em.known & ~em.is_gold
    if not free.any():
        return fit
    weights = limit_class_balance(
        fit.posteriors[free], start[free].mean(axis=0), tolerance=tolerance
    )
    if np.all(weights == 1.0):
        return fit
    post = fit.posteriors * weights
    post /= post.sum(axis=1, keepdims=True)
    post[em.is_gold] = em.gold_onehot
    priors = fit.class_priors * weights
    return fit._replace(posteriors=post, class_priors=priors / priors.sum())


def logsumexp_rows(x: FloatArray) -> FloatArray:
    """``log(sum(exp(x), axis=1))`` kept as a column, stable for large magnitudes."""
    top = x.max(axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return np.asarray(top + np.log(np.exp(x - top).sum(axis=1, keepdims=True)), dtype=np.float64)


def fit_em(
    start: FloatArray,
    em: EmInput,
    *,
    max_iter: int,
    tol: float,
    balance_tolerance: float | None,
) -> EmFit:
    """Both stages and the balance check. Stage 1 runs with the fixed prior: a sensible start
    (from the majority vote's posteriors every annotator looks alike, and a prior fitted to
    that would freeze EM there); stage 2 (``em.fit_prior``) refits the prior from the
    annotators' soft counts; then :func:`checked_balance` (unless ``balance_tolerance`` is
    None)."""
    fit = run_em(start, em._replace(fit_prior=False), max_iter=max_iter, tol=tol)
    if em.fit_prior:
        first = fit.n_iter
        fit = run_em(fit.posteriors, em, max_iter=max_iter, tol=tol)
        fit = fit._replace(n_iter=first + fit.n_iter)
    if balance_tolerance is not None:
        fit = checked_balance(fit, start, em, balance_tolerance)
    return fit
