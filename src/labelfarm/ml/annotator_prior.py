"""The population prior of Dawid-Skene's annotator confusion matrices, fitted from the data.

Every annotator's confusion row ``k`` (true class ``k``) gets Dirichlet pseudo-counts
``strength[k] * mean[k]``: ``mean`` is the population's confusion matrix (how often an
annotator of this crowd is right) and ``strength[k]`` how alike the annotators
are. Both are empirical Bayes estimates from the current soft counts ``counts[a, k, l]``
(the posterior mass of items of class ``k`` that annotator ``a`` labelled ``l``):

- ``mean``: symmetric, the crowd's pooled accuracy on the diagonal (the share of all soft
  counts, plus a weak ``base`` hyperprior of a few pseudo-counts, that fall on the
  diagonal) and the rest spread evenly. It is deliberately not the pooled matrix itself: a
  crowd-wide bias ("everyone says 1 a bit too often") and a class balance explain the same
  votes when items have few labels, and a prior that absorbs the bias lets EM trade one for
  the other until the balance collapses; an annotator's own bias still shows in its
  confusion matrix once its counts outweigh the prior;
- ``strength[k]``: the value on a log grid that maximises the Dirichlet-multinomial
  marginal likelihood of the annotators' rows, ``sum_a log DirMult(counts[a, k] |
  strength * mean[k])`` (type-II maximum likelihood). Alike annotators give a large
  strength (each annotator's row stays near the population's, which is what a sparse crowd
  needs), very different ones a small strength (each row follows its own counts). Rows
  without evidence of spread (no annotator with two or more labels) take the largest
  strength: nothing says the annotators differ.

A fixed prior (the former behaviour) is ``fixed_prior(n_classes, strength, accuracy)``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.special import gammaln

from labelfarm.ml.labels import FloatArray

__all__ = ["STRENGTH_GRID", "AnnotatorPrior", "fit_annotator_prior", "fixed_prior"]

STRENGTH_GRID = np.geomspace(0.5, 512.0, 31)  # candidate pseudo-counts per confusion row


class AnnotatorPrior(NamedTuple):
    """``mean`` ``(K, K)`` rows summing to 1; ``strength`` ``(K,)`` pseudo-counts per row."""

    mean: FloatArray
    strength: FloatArray

    @property
    def pseudo_counts(self) -> FloatArray:
        """The Dirichlet parameters of every annotator's confusion rows, ``(K, K)``."""
        return np.asarray(self.strength[:, None] * self.mean, dtype=np.float64)


def symmetric_confusion(n_classes: int, accuracy: float) -> FloatArray:
    """Rows with ``accuracy`` on the diagonal and the rest spread evenly."""
    if n_classes == 1:
        return np.ones((1, 1))
    conf = np.full((n_classes, n_classes), (1.0 - accuracy) / (n_classes - 1))
    np.fill_diagonal(conf, accuracy)
    return conf


def fixed_prior(n_classes: int, strength: float, accuracy: float) -> AnnotatorPrior:
    """The same ``strength`` pseudo-counts per row, ``accuracy`` of them on the diagonal."""
    return AnnotatorPrior(symmetric_confusion(n_classes, accuracy), np.full(n_classes, strength))


def _dirichlet_multinomial(counts: FloatArray, alpha: FloatArray) -> FloatArray:
    """``log DirMult(counts | alpha)`` per row (without the multinomial coefficient, which
    does not depend on ``alpha``); ``counts`` ``(..., K)`` may be fractional."""
    total = counts.sum(axis=-1)
    a0 = alpha.sum(axis=-1)
    return np.asarray(
        gammaln(a0) - gammaln(a0 + total) + (gammaln(alpha + counts) - gammaln(alpha)).sum(axis=-1),
        dtype=np.float64,
    )


def fit_annotator_prior(
    counts: FloatArray, *, base: FloatArray, grid: FloatArray = STRENGTH_GRID
) -> AnnotatorPrior:
    """The empirical Bayes prior of the confusion rows given soft ``counts`` ``(A, K, K)``.

    ``base`` ``(K, K)``: hyperprior pseudo-counts added to the pooled counts for ``mean``.
    """
    n_classes = counts.shape[1]
    pooled = counts.sum(axis=0) + base
    accuracy = float(np.trace(pooled) / pooled.sum()) if pooled.sum() > 0 else 1.0 / n_classes
    mean = symmetric_confusion(n_classes, min(max(accuracy, 1e-3), 1.0 - 1e-3))
    strength = np.empty(n_classes)
    totals = counts.sum(axis=2)  # (A, K)
    for k in range(n_classes):
        rows = counts[totals[:, k] > 1.0, k, :]
        if len(rows) == 0:
            strength[k] = grid[-1]
            continue
        alpha = grid[:, None, None] * mean[k][None, None, :]  # (G, 1, K)
        score = _dirichlet_multinomial(rows[None, :, :], alpha).sum(axis=1)  # (G,)
        best = np.flatnonzero(score >= score.max() - 1e-9)
        strength[k] = grid[best[-1]]  # ties: the most pooling
    return AnnotatorPrior(mean, strength)
