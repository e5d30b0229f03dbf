"""The common input form of the quality-control math: annotations in long format.

Every categorical annotation is one row of three aligned 1-D integer arrays:

- ``items[j]``: index of the labelled item, in ``0..n_items-1``;
- ``annotators[j]``: index of the annotator, in ``0..n_annotators-1``;
- ``labels[j]``: index of the chosen class, in ``0..n_classes-1``.

Services map their ids to these dense indexes before calling ``labelfarm.ml`` and map the
results back. This module validates the three arrays and builds the usual derived forms:
an items x classes count matrix and the annotators x units reliability matrix used by
Krippendorff's alpha.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

__all__ = [
    "FloatArray",
    "IntArray",
    "as_index_array",
    "count_matrix",
    "labels_per_item",
    "to_reliability_data",
    "validate_annotations",
    "validate_weights",
]


def as_index_array(values: npt.ArrayLike, *, name: str, upper: int | None = None) -> IntArray:
    """Return ``values`` as a 1-D int64 array of indexes in ``0..upper-1``.

    Raises ``ValueError`` naming ``name`` when the input is not 1-D, holds non-integer or
    negative values, or reaches ``upper``.
    """
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of shape (n_annotations,), got {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold integer indexes, got non-integer values")
    elif arr.dtype.kind not in "iub":
        raise ValueError(f"{name} must hold integer indexes, got dtype {arr.dtype}")
    out = arr.astype(np.int64)
    if out.min() < 0:
        raise ValueError(f"{name} must hold indexes >= 0, got {out.min()}")
    if upper is not None and out.max() >= upper:
        raise ValueError(f"{name} must hold indexes < {upper}, got {out.max()}")
    return out


def validate_annotations(
    items: npt.ArrayLike,
    annotators: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    n_items: int | None = None,
    n_annotators: int | None = None,
    n_classes: int | None = None,
) -> tuple[IntArray, IntArray, IntArray]:
    """Check the long-format triple and return it as three int64 arrays.

    The three arrays must be 1-D with the same length ``(n_annotations,)``; each bound that is
    given (``n_items``, ``n_annotators``, ``n_classes``) must be positive and exceed every index
    in its array.
    """
    for bound_name, bound in (
        ("n_items", n_items),
        ("n_annotators", n_annotators),
        ("n_classes", n_classes),
    ):
        if bound is not None and (not isinstance(bound, int | np.integer) or bound < 1):
            raise ValueError(f"{bound_name} must be a positive integer, got {bound!r}")
    it = as_index_array(items, name="items", upper=n_items)
    an = as_index_array(annotators, name="annotators", upper=n_annotators)
    lb = as_index_array(labels, name="labels", upper=n_classes)
    if not (it.shape == an.shape == lb.shape):
        raise ValueError(
            "items, annotators and labels must have the same shape (n_annotations,), got "
            f"{it.shape}, {an.shape} and {lb.shape}"
        )
    return it, an, lb


def validate_weights(
    weights: npt.ArrayLike | None, *, n_annotators: int, name: str = "weights"
) -> FloatArray:
    """Return per-annotator weights of shape ``(n_annotators,)`` (ones when ``None``).

    Weights must be finite and non-negative.
    """
    if weights is None:
        return np.ones(n_annotators, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or w.shape[0] < n_annotators:
        raise ValueError(
            f"{name} must have shape (n_annotators,) = ({n_annotators},) with one weight per "
            f"annotator, got {w.shape}"
        )
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"{name} must be finite and >= 0")
    return w


def count_matrix(
    items: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    n_items: int,
    n_classes: int,
    annotation_weights: npt.ArrayLike | None = None,
) -> FloatArray:
    """Return the ``(n_items, n_classes)`` matrix of (weighted) label counts.

    Entry ``[i, k]`` is the number of annotations (or the sum of ``annotation_weights``, one
    weight per annotation) giving class ``k`` to item ``i``.
    """
    it = as_index_array(items, name="items", upper=n_items)
    lb = as_index_array(labels, name="labels", upper=n_classes)
    if it.shape != lb.shape:
        raise ValueError(
            f"items and labels must have the same shape (n_annotations,), got {it.shape} "
            f"and {lb.shape}"
        )
    w = None
    if annotation_weights is not None:
        w = np.asarray(annotation_weights, dtype=np.float64)
        if w.shape != it.shape:
            raise ValueError(
                f"annotation_weights must have shape (n_annotations,) = {it.shape}, got {w.shape}"
            )
    flat = np.bincount(it * n_classes + lb, weights=w, minlength=n_items * n_classes)
    return flat.astype(np.float64).reshape(n_items, n_classes)


def labels_per_item(items: npt.ArrayLike, *, n_items: int) -> IntArray:
    """Return the number of annotations of each item, shape ``(n_items,)``."""
    it = as_index_array(items, name="items", upper=n_items)
    return np.bincount(it, minlength=n_items).astype(np.int64)


def to_reliability_data(
    items: npt.ArrayLike,
    annotators: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    n_items: int,
    n_annotators: int,
) -> FloatArray:
    """Return the ``(n_annotators, n_items)`` matrix of values with NaN where missing.

    This is the layout of Krippendorff's papers and of
    :func:`labelfarm.ml.agreement.krippendorff_alpha`. An annotator may label an item once.
    """
    it, an, lb = validate_annotations(
        items, annotators, labels, n_items=n_items, n_annotators=n_annotators
    )
    cell = an * n_items + it
    if np.unique(cell).size != cell.size:
        raise ValueError("each (annotator, item) pair may appear at most once")
    data = np.full((n_annotators, n_items), np.nan)
    data[an, it] = lb
    return data
