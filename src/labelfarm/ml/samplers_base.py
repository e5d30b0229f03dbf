"""What every active-learning sampler shares: checking its inputs, the top two classes of each
candidate (a chunk of rows at a time, so a million candidates stay in bounded memory), and
the uncertainty measures the samplers rank by.

Every measure answers float64 values in [0, 1], higher = more uncertain = label sooner.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

CHUNK = 65_536  # candidate rows processed at once: bounds the temporary arrays
SUM_TOLERANCE = 1e-3  # a row of probabilities may sum to 1 within this (float32 storage)
RANGE_TOLERANCE = 1e-6


def check_proba(proba: Any) -> np.ndarray:
    """``proba`` as a 2-D float array of probabilities, or a ValueError saying what is wrong."""
    arr = np.asarray(proba)
    if arr.ndim != 2:
        raise ValueError(f"proba must be a 2-D array (candidates x classes), got shape {arr.shape}")
    if arr.shape[1] < 1:
        raise ValueError("proba must have at least one class column")
    if not np.issubdtype(arr.dtype, np.floating):
        if not np.issubdtype(arr.dtype, np.integer) and arr.dtype != np.bool_:
            raise ValueError(f"proba must hold numbers, got dtype {arr.dtype}")
        arr = arr.astype(np.float64)
    if arr.shape[0] == 0:
        return arr
    for start in range(0, len(arr), CHUNK):
        _check_rows(arr[start : start + CHUNK], start)
    return arr


def _check_rows(rows: np.ndarray, offset: int) -> None:
    finite = np.isfinite(rows).all(axis=1)
    if not finite.all():
        bad = offset + int(np.argmin(finite))
        raise ValueError(f"proba row {bad} holds NaN or infinity")
    low = rows.min(axis=1) < -RANGE_TOLERANCE
    high = rows.max(axis=1) > 1 + RANGE_TOLERANCE
    if low.any() or high.any():
        bad = offset + int(np.argmax(low | high))
        raise ValueError(f"proba row {bad} has a value outside [0, 1]")
    sums = rows.sum(axis=1, dtype=np.float64)
    off = np.abs(sums - 1.0) > SUM_TOLERANCE
    if off.any():
        bad = int(np.argmax(off))
        raise ValueError(
            f"proba row {offset + bad} sums to {sums[bad]:.6g}, not 1 "
            f"(each row must be a probability distribution over the classes)"
        )


def check_embeddings(embeddings: Any, n: int, what: str = "embeddings") -> np.ndarray:
    """``(n, d)`` finite float embeddings, or a ValueError."""
    arr = np.asarray(embeddings)
    if arr.ndim != 2 or (n >= 0 and arr.shape[0] != n):
        want = f"({n}, d)" if n >= 0 else "(m, d)"
        raise ValueError(f"{what} must have shape {want}, got {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{what} must hold numbers, got dtype {arr.dtype}")
    if arr.size and not np.isfinite(arr).all():
        raise ValueError(f"{what} hold NaN or infinity")
    return arr


def check_rng(rng: Any) -> np.random.Generator:
    """A numpy Generator (an int seeds a new one); anything else is refused."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, int | np.integer) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise ValueError(f"rng must be a numpy.random.Generator or an int seed, got {type(rng)!r}")


def resolve_params(
    sampler: str, defaults: Mapping[str, Any], params: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The sampler's defaults overlaid with ``params``; an unknown name is refused."""
    given = dict(params or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        valid = ", ".join(sorted(defaults)) or "none"
        raise ValueError(f"sampler {sampler!r}: unknown param {unknown[0]!r}; valid: {valid}")
    return {**defaults, **given}


def top_two(proba: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the highest and second-highest probability and their class indexes
    (``p1, p2, c1, c2``; with one class, ``p2`` is 0 and ``c2`` is -1)."""
    n, k = proba.shape
    p1, p2 = np.empty(n, np.float64), np.zeros(n, np.float64)
    c1, c2 = np.empty(n, np.int64), np.full(n, -1, np.int64)
    for start in range(0, n, CHUNK):
        rows = proba[start : start + CHUNK]
        end = start + len(rows)
        if k == 1:
            p1[start:end], c1[start:end] = rows[:, 0], 0
            continue
        idx = np.argpartition(rows, k - 2, axis=1)[:, -2:]
        vals = np.take_along_axis(rows, idx, axis=1).astype(np.float64)
        # the larger of the two first; on a tie, the lower class index first (stable)
        swap = (vals[:, 0] < vals[:, 1]) | ((vals[:, 0] == vals[:, 1]) & (idx[:, 0] > idx[:, 1]))
        first = np.where(swap, 1, 0)
        r = np.arange(len(rows))
        p1[start:end], p2[start:end] = vals[r, first], vals[r, 1 - first]
        c1[start:end], c2[start:end] = idx[r, first], idx[r, 1 - first]
    return p1, p2, c1, c2


def margin_uncertainty(proba: np.ndarray) -> np.ndarray:
    """1 - (p1 - p2): 1 when the two likeliest classes tie, 0 when one class is certain."""
    p1, p2, _, _ = top_two(proba)
    return np.clip(1.0 - (p1 - p2), 0.0, 1.0)


def least_confidence_uncertainty(proba: np.ndarray) -> np.ndarray:
    """(1 - p1) * k / (k - 1): 1 for a uniform row, 0 when one class is certain."""
    n, k = proba.shape
    if k == 1:
        return np.zeros(n)
    out = np.empty(n, np.float64)
    for start in range(0, n, CHUNK):
        rows = proba[start : start + CHUNK]
        out[start : start + len(rows)] = 1.0 - rows.max(axis=1)
    return np.clip(out * (k / (k - 1)), 0.0, 1.0)


def entropy_uncertainty(proba: np.ndarray) -> np.ndarray:
    """Shannon entropy over log(k): 1 for a uniform row, 0 when one class is certain."""
    n, k = proba.shape
    if k == 1:
        return np.zeros(n)
    out = np.empty(n, np.float64)
    for start in range(0, n, CHUNK):
        rows = np.clip(proba[start : start + CHUNK].astype(np.float64), 0.0, 1.0)
        logs = np.log(rows, out=np.zeros_like(rows), where=rows > 0)
        out[start : start + len(rows)] = -(rows * logs).sum(axis=1)
    return np.clip(out / np.log(k), 0.0, 1.0)


def top_indexes(values: np.ndarray, m: int) -> np.ndarray:
    """Indexes of the ``m`` highest values, highest first (ties: lower index first); O(n)."""
    n = len(values)
    m = min(m, n)
    if m <= 0:
        return np.zeros(0, np.int64)
    part = np.argpartition(-values, m - 1)[:m] if m < n else np.arange(n)
    order = np.lexsort((part, -values[part]))
    return part[order].astype(np.int64)
