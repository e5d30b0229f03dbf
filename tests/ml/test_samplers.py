"""The active-learning samplers (labelfarm.ml.samplers): rankings on constructed cases,
determinism, bounds, errors, and a million candidates."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from labelfarm.db.project_settings import ProjectSettings
from labelfarm.ml.samplers import get_sampler, sampler_names, score

NAMES = ("random", "least_confidence", "margin", "entropy", "margin_diversity",
         "confusion_pair", "mix")  # fmt: skip


def rows(*probas: list[float]) -> np.ndarray:
    return np.asarray(probas, dtype=np.float64)


def dirichlet(n: int, k: int, seed: int = 0, alpha: float = 0.5) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.full(k, alpha), size=n)


def top(scores: np.ndarray, b: int) -> np.ndarray:
    return np.lexsort((np.arange(len(scores)), -scores))[:b]


def run(name: str, proba: np.ndarray, seed: int = 0, **kw: object) -> np.ndarray:
    if name == "confusion_pair" and "pair" not in kw:
        kw["pair"] = (0, 1)
    return score(name, proba, rng=np.random.default_rng(seed), **kw)  # type: ignore[arg-type]


def test_registry_names_versions_and_the_project_default() -> None:
    assert sampler_names() == NAMES
    for name in NAMES:
        s = get_sampler(name)
        assert s.name == name and s.version >= 1 and s.description
    assert get_sampler("margin_diversity").needs_embeddings
    assert get_sampler("confusion_pair").needs_pair
    default = {f.name: f.default for f in dataclasses.fields(ProjectSettings)}["sampler"]
    assert default in sampler_names()
    with pytest.raises(ValueError, match=r"unknown sampler 'nope'.*margin"):
        get_sampler("nope")


def test_margin_prefers_the_closest_top_two() -> None:
    proba = rows([0.9, 0.05, 0.05], [0.5, 0.45, 0.05], [0.6, 0.2, 0.2], [0.34, 0.33, 0.33])
    s = run("margin", proba)
    assert list(top(s, 4)) == [3, 1, 2, 0]
    assert s[3] == pytest.approx(0.99) and s[0] == pytest.approx(0.15)


def test_least_confidence_ranks_by_the_top_probability() -> None:
    proba = rows([0.9, 0.1, 0.0], [0.5, 0.49, 0.01], [0.4, 0.3, 0.3], [1 / 3, 1 / 3, 1 / 3])
    s = run("least_confidence", proba)
    assert list(top(s, 4)) == [3, 2, 1, 0]
    assert s[3] == pytest.approx(1.0)


def test_entropy_prefers_spread_probabilities_where_margin_does_not() -> None:
    # same top two (a tie), but the first spreads its remaining mass over many classes
    spread = [0.3, 0.3, 0.1, 0.1, 0.1, 0.1]
    peaked = [0.49, 0.49, 0.01, 0.01, 0.0, 0.0]
    proba = rows(peaked, spread, [0.95, 0.01, 0.01, 0.01, 0.01, 0.01])
    e = run("entropy", proba)
    assert list(top(e, 3)) == [1, 0, 2]
    assert run("margin", proba)[0] == pytest.approx(run("margin", proba)[1])
    assert run("entropy", rows([1 / 6] * 6))[0] == pytest.approx(1.0)


def test_confusion_pair_picks_the_pair_then_one_of_it() -> None:
    proba = rows(
        [0.45, 0.1, 0.0, 0.45],  # top two = the pair (0, 3), tied
        [0.6, 0.1, 0.0, 0.3],  # top two = the pair, far apart
        [0.5, 0.5, 0.0, 0.0],  # 0 and 1: one of the pair in the top two
        [0.0, 0.5, 0.5, 0.0],  # neither
        [0.01, 0.49, 0.01, 0.49],  # 1 and 3 tie: one of the pair
    )
    s = run("confusion_pair", proba, pair=(3, 0))
    assert list(top(s, 5))[:2] == [0, 1]
    assert set(top(s, 4)[2:]) == {2, 4}
    assert top(s, 5)[-1] == 3
    assert list(top(run("confusion_pair", proba, pair=(1, 2)), 1)) == [3]


def clusters(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three embedding clusters; the biggest is the slightly most uncertain one."""
    rng = np.random.default_rng(seed)
    sizes = (600, 200, 200)
    centres = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0]])
    which = np.repeat(np.arange(3), sizes)
    emb = centres[which] + rng.normal(size=(len(which), 2))
    gap = np.where(which == 0, 0.02, 0.10) + rng.uniform(0, 0.05, len(which))
    p1 = (1 + gap) / 2
    proba = np.stack([p1, 1 - p1], axis=1)
    return proba, emb, which


def test_diversity_covers_clusters_that_pure_margin_misses() -> None:
    proba, emb, which = clusters()
    margin_batch = which[top(run("margin", proba), 30)]
    assert set(margin_batch) == {0}
    for method in ("kmeans", "kcenter"):
        s = run("margin_diversity", proba, embeddings=emb, params={"method": method, "batch": 30})
        batch = which[top(s, 30)]
        assert set(batch) == {0, 1, 2}, method
        assert ((s >= 0) & (s <= 1)).all()


def test_kcenter_avoids_what_is_already_labelled() -> None:
    proba, emb, which = clusters(1)
    labelled = emb[which == 1][:50]  # cluster 1 is covered already
    s = run(
        "margin_diversity",
        proba,
        embeddings=emb,
        labeled_embeddings=labelled,
        params={"method": "kcenter", "batch": 3},
    )
    assert set(which[top(s, 3)]) == {0, 2}  # never the covered cluster
    alone = run("margin_diversity", proba, embeddings=emb, params={"method": "kcenter", "batch": 3})
    assert set(which[top(alone, 3)]) == {0, 1, 2}


def test_diversity_without_embeddings_spreads_over_the_probabilities() -> None:
    proba = dirichlet(500, 4, seed=3)
    s = run("margin_diversity", proba, params={"batch": 20, "pool": 200})
    pool = set(top(run("margin", proba), 200))
    assert set(top(s, 20)) <= pool  # still the most uncertain candidates
    assert set(top(s, 200)) == pool
    assert len(set(proba[top(s, 20)].argmax(axis=1))) >= 3  # over several predicted classes


def test_mix_explores_a_share_at_random() -> None:
    proba = dirichlet(20_000, 5, seed=1)
    margin_top = set(top(run("margin", proba), 1000))
    for share in (0.0, 0.1, 0.3):
        batch = set(top(run("mix", proba, params={"explore": share}), 1000))
        outside = len(batch - margin_top) / 1000
        # random picks land outside the margin top 5% of the time
        assert outside == pytest.approx(share * 0.95, abs=0.04), share
    everything = run("mix", proba, params={"explore": 1.0})
    assert len(set(top(everything, 1000)) & margin_top) < 150


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_with_a_seeded_rng_and_bounded(name: str) -> None:
    proba = dirichlet(3000, 10, seed=2)
    emb = np.random.default_rng(5).normal(size=(3000, 16)).astype(np.float16)
    kw = {"embeddings": emb} if name == "margin_diversity" else {}
    a, b = run(name, proba, 7, **kw), run(name, proba, 7, **kw)
    assert a.dtype == np.float64 and a.shape == (3000,)
    assert np.array_equal(a, b)
    assert ((a >= 0) & (a <= 1)).all()
    if name in ("random", "mix"):
        assert not np.array_equal(a, run(name, proba, 8, **kw))
    assert run(name, np.zeros((0, 10)), 7).shape == (0,)


def test_errors_are_clear() -> None:
    good = dirichlet(5, 3)
    with pytest.raises(ValueError, match="2-D"):
        score("margin", np.ones(3) / 3, rng=np.random.default_rng(0))
    nan = good.copy()
    nan[2, 1] = np.nan
    with pytest.raises(ValueError, match="row 2 holds NaN"):
        score("margin", nan, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"row 1 sums to 1\.5"):
        score("entropy", rows([1, 0, 0], [0.5, 0.5, 0.5]), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="outside"):
        score("margin", rows([1.5, -0.5, 0]), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="needs pair"):
        score("confusion_pair", good, rng=np.random.default_rng(0))
    for pair in ((1, 1), (0, 3), (-1, 0), ("a", 1), (1,)):
        with pytest.raises(ValueError, match="pair must be two different class indexes"):
            score("confusion_pair", good, rng=np.random.default_rng(0), pair=pair)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown param 'batch'"):
        score("margin", good, rng=np.random.default_rng(0), params={"batch": 3})
    with pytest.raises(ValueError, match="explore"):
        score("mix", good, rng=np.random.default_rng(0), params={"explore": 2})
    with pytest.raises(ValueError, match="method"):
        score("margin_diversity", good, rng=0, params={"method": "dbscan"})
    with pytest.raises(ValueError, match="embeddings must have one row per candidate"):
        score("margin_diversity", good, rng=0, embeddings=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="rng"):
        score("margin", good, rng="seed")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown sampler"):
        score("uncertainty", good, rng=0)


def test_one_class_and_float32_storage() -> None:
    assert np.array_equal(run("margin", np.ones((3, 1))), np.zeros(3))
    assert np.array_equal(run("entropy", np.ones((3, 1))), np.zeros(3))
    stored = dirichlet(100, 10).astype(np.float32)  # model_outputs keep float32
    assert run("margin", stored).shape == (100,)


def test_a_million_candidates() -> None:
    rng = np.random.default_rng(0)
    proba = rng.random((1_000_000, 10), dtype=np.float32)
    proba /= proba.sum(axis=1, keepdims=True)
    s = score("margin", proba, rng=rng)
    assert s.shape == (1_000_000,) and ((s >= 0) & (s <= 1)).all()
    best = int(s.argmax())
    ordered = np.sort(proba[best])
    assert s[best] == pytest.approx(1 - (ordered[-1] - ordered[-2]), abs=1e-6)
    emb = rng.normal(size=(1_000_000, 8)).astype(np.float16)
    d = score("margin_diversity", proba, rng=rng, embeddings=emb)
    assert (d > 0.5).sum() == 2000  # the diversity step saw only the pool
