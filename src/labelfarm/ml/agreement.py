"""Inter-annotator agreement coefficients.

- :func:`krippendorff_alpha` on an annotators x units matrix with NaN for missing values
  (nominal, ordinal, interval and ratio metrics), after Krippendorff (2011), "Computing
  Krippendorff's Alpha-Reliability";
- :func:`fleiss_kappa` on an items x categories count matrix with the same number of raters
  per item, with Fleiss' (1971) per-category kappas;
- :func:`pairwise_agreement` (observed agreement and shared-item counts of every annotator
  pair, from long-format labels) and :func:`cohen_kappa` for one pair;
- :func:`specific_agreement` per category and :func:`get_item_agreement_scores` per item.

Undefined coefficients (no variation, no pairable values) are returned as NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from labelfarm.ml.labels import FloatArray, IntArray, as_index_array, validate_annotations

__all__ = [
    "FleissKappa",
    "PairwiseAgreement",
    "cohen_kappa",
    "fleiss_kappa",
    "get_item_agreement_scores",
    "krippendorff_alpha",
    "pairwise_agreement",
    "specific_agreement",
]

Level = Literal["nominal", "ordinal", "interval", "ratio"]


def _delta_squared(values: FloatArray, n_c: FloatArray, level: Level) -> FloatArray:
    """Squared difference metric between every pair of observed values."""
    c = values[:, None]
    k = values[None, :]
    if level == "nominal":
        return (c != k).astype(np.float64)
    if level == "interval":
        return (c - k) ** 2
    if level == "ratio":
        s = c + k
        return np.divide((c - k) ** 2, s**2, out=np.zeros((values.size, values.size)), where=s != 0)
    # ordinal: (sum of n_g for g between c and k inclusive - (n_c + n_k) / 2) ** 2
    cum = np.concatenate([[0.0], np.cumsum(n_c)])
    idx = np.arange(values.size)
    lo = np.minimum(idx[:, None], idx[None, :])
    hi = np.maximum(idx[:, None], idx[None, :])
    between = cum[hi + 1] - cum[lo]
    return (between - (n_c[:, None] + n_c[None, :]) / 2.0) ** 2


def krippendorff_alpha(reliability_data: npt.ArrayLike, *, level: Level = "nominal") -> float:
    """Return Krippendorff's alpha of an ``(n_annotators, n_units)`` value matrix.

    Missing values are NaN. Units with fewer than two values are not pairable and are
    ignored. ``level`` picks the difference metric: ``"nominal"``, ``"ordinal"`` (ranks of
    the observed values), ``"interval"`` or ``"ratio"``. Returns NaN when there are no
    pairable values or no variation among them (alpha is undefined).
    """
    data = np.asarray(reliability_data, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(
            "reliability_data must have shape (n_annotators, n_units) with NaN for missing, "
            f"got {data.shape}"
        )
    if level not in ("nominal", "ordinal", "interval", "ratio"):
        raise ValueError(
            f"level must be one of 'nominal', 'ordinal', 'interval', 'ratio', got {level!r}"
        )
    if np.any(np.isinf(data)):
        raise ValueError("reliability_data must be finite or NaN")
    present = ~np.isnan(data)
    m_u = present.sum(axis=0)
    pairable = m_u >= 2
    data, present, m_u = data[:, pairable], present[:, pairable], m_u[pairable]
    if m_u.size == 0:
        return float("nan")
    values, inverse = np.unique(data[present], return_inverse=True)
    unit_index = np.nonzero(present)[1]
    # n_uv: units x values counts; coincidences o_ck = sum_u n_uc (n_uk - [c=k]) / (m_u - 1).
    n_uv = np.zeros((m_u.size, values.size))
    np.add.at(n_uv, (unit_index, inverse), 1.0)
    scaled = n_uv / (m_u - 1.0)[:, None]
    coincidence = scaled.T @ n_uv - np.diag(scaled.sum(axis=0))
    n_c = coincidence.sum(axis=1)
    n = n_c.sum()
    delta2 = _delta_squared(values, n_c, level)
    observed = float((coincidence * delta2).sum())
    expected = float((np.outer(n_c, n_c) * delta2).sum()) / (n - 1.0)
    if expected == 0.0:
        return float("nan")
    return 1.0 - observed / expected


@dataclass(frozen=True)
class FleissKappa:
    """Fleiss' kappa with its parts: ``p_observed`` is P-bar, ``p_expected`` is P-bar-e,
    ``per_category`` the kappa of each category (NaN for an unused or universal one)."""

    kappa: float
    per_category: FloatArray
    p_observed: float
    p_expected: float


def _as_counts(counts: npt.ArrayLike) -> FloatArray:
    arr = np.asarray(counts, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"counts must have shape (n_items, n_categories), got {arr.shape}")
    if np.any(arr < 0) or not np.all(np.isfinite(arr)):
        raise ValueError("counts must be finite and >= 0")
    return arr


def fleiss_kappa(counts: npt.ArrayLike) -> FleissKappa:
    """Return Fleiss' kappa of an ``(n_items, n_categories)`` count matrix.

    ``counts[i, j]`` is the number of raters who put item ``i`` in category ``j``; every item
    must have the same number of raters, at least two.
    """
    x = _as_counts(counts)
    if x.shape[0] == 0:
        raise ValueError("counts must have at least one item row")
    per_item = x.sum(axis=1)
    m = per_item[0]
    if not np.all(per_item == m):
        raise ValueError(
            "fleiss_kappa needs the same number of raters per item (each row of counts must "
            f"have the same sum), got row sums from {per_item.min():g} to {per_item.max():g}"
        )
    if m < 2:
        raise ValueError(f"fleiss_kappa needs at least 2 raters per item, got {m:g}")
    n_items = x.shape[0]
    p_j = x.sum(axis=0) / (n_items * m)
    p_i = ((x * (x - 1)).sum(axis=1)) / (m * (m - 1))
    p_bar = float(p_i.mean())
    p_e = float((p_j**2).sum())
    kappa = (p_bar - p_e) / (1 - p_e) if p_e < 1 else float("nan")
    pq = p_j * (1 - p_j)
    disagreement = (x * (m - x)).sum(axis=0)
    per_category = np.full(x.shape[1], np.nan)
    ok = pq > 0
    per_category[ok] = 1 - disagreement[ok] / (n_items * m * (m - 1) * pq[ok])
    return FleissKappa(
        kappa=float(kappa), per_category=per_category, p_observed=p_bar, p_expected=p_e
    )


def get_item_agreement_scores(counts: npt.ArrayLike) -> FloatArray:
    """Return the share of agreeing rater pairs of each item, shape ``(n_items,)``, in [0, 1].

    ``counts`` is ``(n_items, n_categories)``; raters per item may differ. Items with fewer
    than two ratings get NaN.
    """
    x = _as_counts(counts)
    m = x.sum(axis=1)
    pairs = m * (m - 1)
    agree = (x * (x - 1)).sum(axis=1)
    return np.divide(agree, pairs, out=np.full(m.shape, np.nan), where=m >= 2)


def specific_agreement(counts: npt.ArrayLike) -> FloatArray:
    """Return the specific agreement of each category, shape ``(n_categories,)``, in [0, 1].

    For category ``j``: of all ordered rater pairs on the same item where the first rater
    chose ``j``, the share where the second chose ``j`` too,
    ``sum_i n_ij (n_ij - 1) / sum_i n_ij (n_i - 1)``. Raters per item may differ; NaN for a
    category never chosen on an item with two or more ratings.
    """
    x = _as_counts(counts)
    m = x.sum(axis=1, keepdims=True)
    num = (x * (x - 1)).sum(axis=0)
    den = (x * (m - 1)).sum(axis=0)
    return np.divide(num, den, out=np.full(x.shape[1], np.nan), where=den > 0)


@dataclass(frozen=True)
class PairwiseAgreement:
    """Observed agreement of every annotator pair.

    ``agreement[a, b]`` is the share of items labelled by both ``a`` and ``b`` on which they
    gave the same label (NaN when they share no item); ``n_shared[a, b]`` is the number of
    such items (the diagonal holds each annotator's own item count).
    """

    agreement: FloatArray
    n_shared: IntArray


def pairwise_agreement(
    items: npt.ArrayLike,
    annotators: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    n_annotators: int,
) -> PairwiseAgreement:
    """Return observed agreement and shared-item counts, both ``(n_annotators, n_annotators)``.

    Each annotator may label an item at most once. Computed with sparse products, so cost
    grows with the number of annotations, not items x annotators.
    """
    it, an, lb = validate_annotations(items, annotators, labels, n_annotators=n_annotators)
    if it.size == 0:
        return PairwiseAgreement(
            agreement=np.full((n_annotators, n_annotators), np.nan),
            n_shared=np.zeros((n_annotators, n_annotators), dtype=np.int64),
        )
    n_items = int(it.max()) + 1
    n_classes = int(lb.max()) + 1
    if np.unique(an * n_items + it).size != it.size:
        raise ValueError("each (annotator, item) pair may appear at most once")
    ones = np.ones(it.size)
    from scipy import sparse  # imported when needed: scipy is heavy for a server

    labelled = sparse.csr_matrix((ones, (an, it)), shape=(n_annotators, n_items))
    chose = sparse.csr_matrix(
        (ones, (an, it * n_classes + lb)), shape=(n_annotators, n_items * n_classes)
    )
    shared = np.asarray((labelled @ labelled.T).todense(), dtype=np.int64)
    same = np.asarray((chose @ chose.T).todense(), dtype=np.float64)
    agreement = np.divide(same, shared, out=np.full(shared.shape, np.nan), where=shared > 0)
    return PairwiseAgreement(agreement=agreement, n_shared=shared)


def cohen_kappa(
    labels_a: npt.ArrayLike, labels_b: npt.ArrayLike, *, n_classes: int | None = None
) -> float:
    """Return Cohen's kappa of two annotators' labels on the same items.

    ``labels_a`` and ``labels_b`` are aligned ``(n_shared,)`` class-index arrays. Returns NaN
    when chance agreement is 1 (both used a single, identical class) or there are no items.
    """
    a = as_index_array(labels_a, name="labels_a", upper=n_classes)
    b = as_index_array(labels_b, name="labels_b", upper=n_classes)
    if a.shape != b.shape:
        raise ValueError(
            f"labels_a and labels_b must have the same shape (n_shared,), got {a.shape} "
            f"and {b.shape}"
        )
    if a.size == 0:
        return float("nan")
    k = n_classes if n_classes is not None else int(max(a.max(), b.max())) + 1
    p_o = float(np.mean(a == b))
    p_e = float(np.bincount(a, minlength=k) @ np.bincount(b, minlength=k)) / a.size**2
    if p_e >= 1.0:
        return float("nan")
    return (p_o - p_e) / (1.0 - p_e)
