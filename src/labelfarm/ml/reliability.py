"""Annotator accuracy from gold results, as a Beta posterior.

An annotator who got ``n_correct`` of ``n_total`` gold items right has, under a
``Beta(alpha, beta)`` prior, the posterior ``Beta(alpha + n_correct, beta + n_total -
n_correct)``. :func:`beta_accuracy` returns its mean and equal-tailed credible interval,
vectorised over annotators; :func:`beta_accuracy_per_class` does the same per annotator and
true class from long-format gold results. The lower bound is the cautious number to rank or
gate annotators by: it stays low until there is enough evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from labelfarm.ml.labels import FloatArray, as_index_array

__all__ = ["BetaAccuracy", "beta_accuracy", "beta_accuracy_per_class"]


@dataclass(frozen=True)
class BetaAccuracy:
    """Posterior accuracy: ``mean``, credible bounds ``lower``/``upper``, and the counts."""

    mean: FloatArray
    lower: FloatArray
    upper: FloatArray
    n_correct: FloatArray
    n_total: FloatArray


def _check_options(prior: tuple[float, float], credible: float) -> tuple[float, float]:
    if len(prior) != 2:
        raise ValueError(f"prior must be a pair (alpha, beta), got {prior!r}")
    alpha, beta = float(prior[0]), float(prior[1])
    if not (alpha > 0 and beta > 0 and np.isfinite(alpha) and np.isfinite(beta)):
        raise ValueError(f"prior must be two finite numbers > 0, got {prior!r}")
    if not 0.0 < credible < 1.0:
        raise ValueError(f"credible must be in (0, 1), got {credible!r}")
    return alpha, beta


def beta_accuracy(
    n_correct: npt.ArrayLike,
    n_total: npt.ArrayLike,
    *,
    prior: tuple[float, float] = (1.0, 1.0),
    credible: float = 0.9,
) -> BetaAccuracy:
    """Return the Beta posterior of accuracy for each (n_correct, n_total) pair.

    ``n_correct`` and ``n_total`` are arrays of the same shape (or scalars) with
    ``0 <= n_correct <= n_total``; the result arrays have that shape. ``prior`` is
    ``(alpha, beta)`` of the Beta prior; ``lower``/``upper`` bound the equal-tailed
    ``credible`` interval (``scipy.stats.beta.ppf`` at ``(1 - credible) / 2`` and
    ``(1 + credible) / 2``).
    """
    from scipy.special import betaincinv  # the Beta quantile; scipy.stats is heavier

    alpha, beta = _check_options(prior, credible)
    k = np.asarray(n_correct, dtype=np.float64)
    n = np.asarray(n_total, dtype=np.float64)
    if k.shape != n.shape:
        raise ValueError(
            f"n_correct and n_total must have the same shape, got {k.shape} and {n.shape}"
        )
    if not (np.all(np.isfinite(k)) and np.all(np.isfinite(n))):
        raise ValueError("n_correct and n_total must be finite")
    if np.any(k < 0) or np.any(k > n):
        raise ValueError("counts must satisfy 0 <= n_correct <= n_total")
    a = alpha + k
    b = beta + (n - k)
    tail = (1.0 - credible) / 2.0
    return BetaAccuracy(
        mean=np.asarray(a / (a + b), dtype=np.float64),
        lower=np.asarray(betaincinv(a, b, tail), dtype=np.float64),
        upper=np.asarray(betaincinv(a, b, 1.0 - tail), dtype=np.float64),
        n_correct=k,
        n_total=n,
    )


def beta_accuracy_per_class(
    annotators: npt.ArrayLike,
    true_classes: npt.ArrayLike,
    correct: npt.ArrayLike,
    *,
    n_annotators: int,
    n_classes: int,
    prior: tuple[float, float] = (1.0, 1.0),
    credible: float = 0.9,
) -> BetaAccuracy:
    """Return Beta posteriors of accuracy per annotator and true class.

    One row per gold result: ``annotators[j]`` answered a gold item of class
    ``true_classes[j]``, right when ``correct[j]`` is true. All three are ``(n_results,)``.
    Every result array has shape ``(n_annotators, n_classes)``; cells without results hold
    the prior.
    """
    an = as_index_array(annotators, name="annotators", upper=n_annotators)
    tc = as_index_array(true_classes, name="true_classes", upper=n_classes)
    ok = np.asarray(correct)
    if ok.dtype.kind not in "bi" or (ok.size and not np.isin(ok, (0, 1)).all()):
        raise ValueError("correct must hold booleans (or 0/1)")
    if not (an.shape == tc.shape == ok.shape):
        raise ValueError(
            "annotators, true_classes and correct must have the same shape (n_results,), got "
            f"{an.shape}, {tc.shape} and {ok.shape}"
        )
    cell = an * n_classes + tc
    size = n_annotators * n_classes
    n_total = np.bincount(cell, minlength=size).reshape(n_annotators, n_classes)
    n_right = np.bincount(cell, weights=ok.astype(np.float64), minlength=size)
    return beta_accuracy(
        n_right.reshape(n_annotators, n_classes),
        n_total.astype(np.float64),
        prior=prior,
        credible=credible,
    )
