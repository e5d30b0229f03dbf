"""The class-balance check of Dawid-Skene: its balance may not stray far from the crowd's.

With few labels per item, a crowd-wide bias and a skewed class balance explain the votes
almost equally well, and EM can slide into calling nearly every item one class. The
majority vote's class balance is a robust reference (it can be off by the crowd's bias, but
it never collapses on its own). :func:`limit_class_balance` measures the total variation
distance between the model's class balance (the mean posterior of the items) and the
majority vote's; beyond ``tolerance`` it shifts the class priors (the prior-shift
re-weighting of Saerens et al., 2002: every posterior row multiplied by one weight per class
and renormalised) until the balance sits on the edge of the allowed band, on the segment
between the two balances. Below the tolerance nothing changes.
"""

from __future__ import annotations

import numpy as np

from labelfarm.ml.labels import FloatArray

__all__ = ["BALANCE_TOLERANCE", "limit_class_balance", "total_variation"]

BALANCE_TOLERANCE = 0.1  # the largest total variation distance from the majority vote's balance


def total_variation(p: FloatArray, q: FloatArray) -> float:
    return float(0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum())


def limit_class_balance(
    posteriors: FloatArray, reference: FloatArray, *, tolerance: float = BALANCE_TOLERANCE
) -> FloatArray:
    """Per-class weights ``w`` (``(K,)``, 1 when nothing changes) such that the posteriors
    re-weighted by ``w`` (row-normalised) have a mean within ``tolerance`` (total variation)
    of ``reference`` (a class balance summing to 1)."""
    n_classes = posteriors.shape[1]
    weights = np.ones(n_classes)
    if len(posteriors) == 0:
        return weights
    balance = posteriors.mean(axis=0)
    gap = total_variation(balance, reference)
    if gap <= tolerance:
        return weights
    target = reference + (balance - reference) * (tolerance / gap)
    target = np.maximum(target, 1e-12)
    for _ in range(200):  # fixed point: scale each class by how far its share is off
        shifted = posteriors * weights
        shifted /= shifted.sum(axis=1, keepdims=True)
        share = np.maximum(shifted.mean(axis=0), 1e-12)
        if total_variation(share, target) < 1e-6:
            break
        weights = weights * (target / share)
        weights /= weights.max()
    return weights
