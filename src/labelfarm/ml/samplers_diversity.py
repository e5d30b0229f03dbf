"""``margin_diversity``: the most uncertain candidates (by margin), spread over the model's
embedding space so a batch does not spend its labels on near-duplicates.

1. The ``pool`` candidates with the highest margin uncertainty are kept (at most
   :data:`MAX_POOL`; the diversity step never sees more, whatever the number of candidates).
2. Their features are the model's embeddings, or, when the model has none, their class
   probabilities (so the sampler still spreads the batch over the predicted-class mixtures);
   reduced to at most ``dims`` dimensions by PCA.
3. ``method="kmeans"`` (default, after Zhdanov 2019, "Diverse mini-batch active learning"):
   k-means with ``batch`` clusters weighted by uncertainty; the pool is then served round-robin
   over the clusters - the most uncertain item of each cluster first (most uncertain cluster
   heads first), then the second of each, and so on - so every prefix of the order is spread.
   ``method="kcenter"``: k-center greedy (Sener & Savarese 2018) picks ``batch`` items, each the
   farthest from the already-labelled items (``labeled_embeddings``, at most
   :data:`MAX_LABELED` of them, drawn with ``rng``) and from the items picked before it;
   the rest of the pool follows by margin.
4. Scores: the ordered pool gets (0.5, 1], highest first; every other candidate gets its margin
   uncertainty / 2, in [0, 0.5].
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from labelfarm.ml.samplers_base import check_embeddings, margin_uncertainty, top_indexes

MAX_POOL = 5_000
MAX_LABELED = 5_000
DEFAULTS: dict[str, Any] = {"batch": 100, "pool": 2_000, "method": "kmeans", "dims": 32}


def check_diversity_params(p: dict[str, Any]) -> None:
    for name, lo, hi in (("batch", 1, MAX_POOL), ("pool", 1, MAX_POOL), ("dims", 1, 1024)):
        v = p[name]
        if not isinstance(v, int | np.integer) or isinstance(v, bool) or not lo <= v <= hi:
            raise ValueError(f"margin_diversity: param {name!r} must be an integer in [{lo}, {hi}]")
    if p["method"] not in ("kmeans", "kcenter"):
        raise ValueError("margin_diversity: param 'method' must be 'kmeans' or 'kcenter'")


def margin_diversity(
    proba: np.ndarray,
    rng: np.random.Generator,
    embeddings: np.ndarray | None,
    labeled_embeddings: np.ndarray | None,
    params: dict[str, Any],
) -> np.ndarray:
    check_diversity_params(params)
    n = len(proba)
    u = margin_uncertainty(proba)
    if embeddings is not None:
        embeddings = check_embeddings(embeddings, n)
    labeled = None
    if labeled_embeddings is not None and embeddings is not None:
        labeled = check_embeddings(labeled_embeddings, -1, "labeled_embeddings")
        if labeled.shape[1] != embeddings.shape[1]:
            raise ValueError(
                f"labeled_embeddings have {labeled.shape[1]} columns, embeddings "
                f"{embeddings.shape[1]}"
            )
    pool = top_indexes(u, max(int(params["pool"]), int(params["batch"])))
    if len(pool) == 0:
        return np.zeros(0)
    source = embeddings if embeddings is not None else proba
    x = np.asarray(source[pool], dtype=np.float64)
    if labeled is not None and len(labeled) > MAX_LABELED:
        labeled = labeled[np.sort(rng.choice(len(labeled), MAX_LABELED, replace=False))]
    lab = None if labeled is None or len(labeled) == 0 else np.asarray(labeled, np.float64)
    x, lab = _reduce(x, lab, int(params["dims"]), rng)
    batch = min(int(params["batch"]), len(pool))
    if params["method"] == "kmeans":
        order = _kmeans_order(x, u[pool], batch, rng)
    else:
        order = _kcenter_order(x, u[pool], lab, batch)
    scores = u / 2.0
    scores[pool[order]] = 0.5 + 0.5 * (1.0 - np.arange(len(order)) / len(order))
    return np.clip(scores, 0.0, 1.0)


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


def _reduce(
    x: np.ndarray, lab: np.ndarray | None, dims: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None]:
    """PCA to at most ``dims`` dimensions (fitted on the pool), applied to both."""
    seed = _seed(rng)
    if x.shape[1] <= dims or len(x) <= dims:
        return x, lab
    pca = PCA(n_components=dims, svd_solver="randomized", random_state=seed).fit(x)
    return pca.transform(x), (None if lab is None else pca.transform(lab))


def _kmeans_order(x: np.ndarray, u: np.ndarray, batch: int, rng: np.random.Generator) -> np.ndarray:
    """The pool's positions, round-robin over ``batch`` uncertainty-weighted k-means clusters."""
    seed = _seed(rng)
    if batch <= 1 or len(x) <= 1:
        return np.lexsort((np.arange(len(u)), -u))
    distinct = len(np.unique(np.round(x, 12), axis=0))
    clusters = min(batch, distinct)
    if clusters <= 1:
        return np.lexsort((np.arange(len(u)), -u))
    km = KMeans(n_clusters=clusters, n_init=1, max_iter=100, random_state=seed)
    labels = km.fit_predict(x, sample_weight=np.maximum(u, 1e-6))
    by_uncertainty = np.lexsort((np.arange(len(u)), -u))
    rank_in_cluster = np.empty(len(u), np.int64)
    seen = np.zeros(clusters, np.int64)
    for pos in by_uncertainty:  # at most MAX_POOL iterations
        c = labels[pos]
        rank_in_cluster[pos] = seen[c]
        seen[c] += 1
    # round first, then uncertainty (higher first), then position
    return np.lexsort((np.arange(len(u)), -u, rank_in_cluster))


def _kcenter_order(x: np.ndarray, u: np.ndarray, lab: np.ndarray | None, batch: int) -> np.ndarray:
    """``batch`` k-center greedy picks, then the rest of the pool by uncertainty."""
    n = len(x)
    if lab is not None:
        nearest = np.full(n, np.inf)
        for start in range(0, len(lab), 1024):
            nearest = np.minimum(nearest, _sq_dist(x, lab[start : start + 1024]).min(axis=1))
    else:
        nearest = np.full(n, np.inf)
    picked: list[int] = []
    taken = np.zeros(n, bool)
    for _ in range(batch):
        if np.isinf(nearest).all():  # nothing covered yet: start from the most uncertain
            i = int(np.lexsort((np.arange(n), -u))[0])
        else:
            gap = np.where(taken, -1.0, nearest)
            i = int(np.lexsort((np.arange(n), -u, -gap))[0])
        picked.append(i)
        taken[i] = True
        nearest = np.minimum(nearest, _sq_dist(x, x[i : i + 1])[:, 0])
    rest = np.lexsort((np.arange(n), -u))
    rest = rest[~taken[rest]]
    return np.concatenate([np.asarray(picked, np.int64), rest])


def _sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] - 2.0 * a @ b.T + (b * b).sum(1)[None, :]
    return np.maximum(d, 0.0)
