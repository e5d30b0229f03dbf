"""Adaptive overlap: decide which items should be shown to one more annotator.

Instead of a fixed overlap, an item keeps getting annotators while its aggregated confidence
(from :func:`labelfarm.ml.aggregation.majority_vote` or
:func:`labelfarm.ml.aggregation.dawid_skene`) is below a target, between a floor and a
ceiling on the number of labels.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["needs_more_labels"]


def needs_more_labels(
    confidence: npt.ArrayLike,
    n_labels: npt.ArrayLike,
    *,
    target: float,
    min_labels: int,
    max_labels: int,
) -> npt.NDArray[np.bool_]:
    """Return a boolean mask ``(n_items,)``: True where an item should get another label.

    An item needs another label when it has fewer than ``min_labels``, or when its
    ``confidence`` is below ``target`` (NaN counts as below) and it has fewer than
    ``max_labels``. It never needs one at ``max_labels`` or more.
    """
    conf = np.asarray(confidence, dtype=np.float64)
    n = np.asarray(n_labels)
    if conf.ndim != 1 or n.shape != conf.shape:
        raise ValueError(
            "confidence and n_labels must be 1-D arrays of the same shape (n_items,), got "
            f"{conf.shape} and {n.shape}"
        )
    if n.size and (n.dtype.kind not in "iu" or n.min() < 0):
        raise ValueError("n_labels must hold non-negative integers")
    if not 0.0 <= target <= 1.0:
        raise ValueError(f"target must be in [0, 1], got {target}")
    if not 0 <= min_labels <= max_labels:
        raise ValueError(
            f"labels bounds must satisfy 0 <= min_labels <= max_labels, got {min_labels} and "
            f"{max_labels}"
        )
    below_target = ~(conf >= target)  # NaN compares False, so it counts as below target
    return np.asarray((n < min_labels) | (below_target & (n < max_labels)), dtype=np.bool_)
