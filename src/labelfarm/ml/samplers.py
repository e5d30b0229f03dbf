"""Active-learning samplers: a versioned registry of pure functions over candidate model outputs.

``score(name, proba, rng=...)`` answers one float64 score in [0, 1] per candidate, higher =
label sooner; the top-B candidates by score are the sampler's batch of B (the diversity
sampler builds its scores so that every prefix of the order is its batch). A sampler reads the
candidates' class probabilities ``proba`` (n, k), and, where it says so, their embeddings
(n, d), the embeddings of already-labelled items (m, d), or a class pair (a, b).

Every sampler carries a ``version``: changing what a sampler answers for the same inputs bumps
it, so a stored score can say which behaviour made it. Given the same ``rng`` state a sampler
answers the same scores. Work is bounded: uncertainty is computed a chunk of rows at a time and
the diversity step sees at most a few thousand candidates, so a million candidates take seconds.

See docs/active_learning.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labelfarm.ml.samplers_base import (
    check_proba,
    check_rng,
    entropy_uncertainty,
    least_confidence_uncertainty,
    margin_uncertainty,
    resolve_params,
    top_two,
)
from labelfarm.ml.samplers_diversity import DEFAULTS as DIVERSITY_DEFAULTS
from labelfarm.ml.samplers_diversity import margin_diversity


@dataclass(frozen=True)
class Inputs:
    """What a sampler function receives (already checked)."""

    proba: np.ndarray
    rng: np.random.Generator
    embeddings: np.ndarray | None
    labeled_embeddings: np.ndarray | None
    pair: tuple[int, int] | None
    params: dict[str, Any]


@dataclass(frozen=True)
class Sampler:
    name: str
    version: int
    needs_embeddings: bool  # reads the candidates' embeddings (pass them when the model has any)
    needs_pair: bool  # requires pair=(a, b)
    description: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    fn: Callable[[Inputs], np.ndarray] = field(default=lambda i: np.zeros(0), repr=False)


def _random(i: Inputs) -> np.ndarray:
    return i.rng.random(len(i.proba))


def _confusion_pair(i: Inputs) -> np.ndarray:
    """Band 2: top two classes are the pair; band 1: one of them is in the top two; band 0:
    the rest. Within a band, closeness 1 - |p_a - p_b|. Score = (band + closeness) / 3."""
    assert i.pair is not None
    a, b = i.pair
    _, _, c1, c2 = top_two(i.proba)
    in_a = (c1 == a) | (c2 == a)
    in_b = (c1 == b) | (c2 == b)
    band = (in_a & in_b).astype(np.float64) * 2 + (in_a ^ in_b)
    pa = i.proba[:, a].astype(np.float64)
    pb = i.proba[:, b].astype(np.float64)
    closeness = np.clip(1.0 - np.abs(pa - pb), 0.0, 1.0)
    return (band + closeness) / 3.0


def _mix(i: Inputs) -> np.ndarray:
    """Each candidate explores with probability ``explore`` (drawn with rng). Exploiters are
    ranked by margin, explorers in random order; the two orders are interleaved at the rates
    (1 - explore) : explore, so about that share of any top-B is random."""
    share = i.params["explore"]
    if not isinstance(share, int | float) or isinstance(share, bool) or not 0 <= share <= 1:
        raise ValueError("mix: param 'explore' must be a number in [0, 1]")
    n = len(i.proba)
    u = margin_uncertainty(i.proba)
    explorer = i.rng.random(n) < share
    noise = i.rng.random(n)
    position = np.empty(n, np.float64)
    exploit = np.flatnonzero(~explorer)
    explore = np.flatnonzero(explorer)
    if len(exploit):
        order = exploit[np.lexsort((exploit, -u[exploit]))]
        position[order] = (np.arange(len(order)) + 0.5) / max(1.0 - share, 1e-12)
    if len(explore):
        order = explore[np.argsort(noise[explore], kind="stable")]
        position[order] = (np.arange(len(order)) + 0.5) / max(share, 1e-12)
    if n == 0:
        return position
    ranks = np.empty(n, np.float64)
    ranks[np.lexsort((np.arange(n), position))] = np.arange(n)
    return 1.0 - ranks / n


_REGISTRY: tuple[Sampler, ...] = (
    Sampler("random", 1, False, False, "uniform random scores: the baseline", fn=_random),
    Sampler(
        "least_confidence", 1, False, False,
        "(1 - top probability) * k / (k - 1): least confident first",
        fn=lambda i: least_confidence_uncertainty(i.proba),
    ),
    Sampler(
        "margin", 1, False, False,
        "1 - (top probability - second probability): closest top two first",
        fn=lambda i: margin_uncertainty(i.proba),
    ),
    Sampler(
        "entropy", 1, False, False,
        "entropy of the probabilities / log(k): most spread first",
        fn=lambda i: entropy_uncertainty(i.proba),
    ),
    Sampler(
        "margin_diversity", 1, True, False,
        "the most uncertain by margin, spread over the embeddings by k-means (or k-center "
        "greedy); falls back to the probabilities when the model has no embeddings",
        DIVERSITY_DEFAULTS,
        fn=lambda i: margin_diversity(
            i.proba, i.rng, i.embeddings, i.labeled_embeddings, i.params
        ),
    ),
    Sampler(
        "confusion_pair", 1, False, True,
        "items whose top two classes are the pair (a, b), closest first; then items with a or "
        "b in their top two",
        fn=_confusion_pair,
    ),
    Sampler(
        "mix", 1, False, False,
        "margin, with a share of random exploration interleaved (param explore, default 0.1)",
        {"explore": 0.1},
        fn=_mix,
    ),
)  # fmt: skip
SAMPLERS: dict[str, Sampler] = {s.name: s for s in _REGISTRY}


def sampler_names() -> tuple[str, ...]:
    """The registry's names (the values the project setting ``sampler`` accepts)."""
    return tuple(SAMPLERS)


def get_sampler(name: str) -> Sampler:
    """The sampler named ``name``; an unknown name is a ValueError listing the valid ones."""
    sampler = SAMPLERS.get(name) if isinstance(name, str) else None
    if sampler is None:
        raise ValueError(f"unknown sampler {name!r}; valid names: {', '.join(SAMPLERS)}")
    return sampler


def _check_pair(pair: Any, k: int, name: str) -> tuple[int, int]:
    if pair is None:
        raise ValueError(f"sampler {name!r} needs pair=(a, b): the two class indexes to target")
    try:
        a, b = (int(v) for v in pair)
        ok = all(float(v) == int(v) and not isinstance(v, bool) for v in pair)
    except (TypeError, ValueError):
        ok = False
    if not ok or a == b or not (0 <= a < k and 0 <= b < k):
        raise ValueError(f"pair must be two different class indexes in [0, {k}), got {pair!r}")
    return a, b


def score(
    name: str,
    proba: Any,
    *,
    rng: np.random.Generator | int,
    embeddings: np.ndarray | None = None,
    labeled_embeddings: np.ndarray | None = None,
    pair: tuple[int, int] | None = None,
    params: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """Scores in [0, 1] (higher = label sooner) of the n candidates whose class probabilities
    are ``proba`` (n, k). Bad shapes, NaN, rows not summing to 1, a missing or wrong ``pair``,
    unknown params: ValueError."""
    sampler = get_sampler(name)
    p = check_proba(proba)
    generator = check_rng(rng)
    checked_pair = _check_pair(pair, p.shape[1], name) if sampler.needs_pair else None
    resolved = resolve_params(name, sampler.defaults, params)
    if embeddings is not None and np.asarray(embeddings).shape[:1] != (len(p),):
        raise ValueError(
            f"embeddings must have one row per candidate ({len(p)}), "
            f"got shape {np.asarray(embeddings).shape}"
        )
    inputs = Inputs(p, generator, embeddings, labeled_embeddings, checked_pair, resolved)
    out = np.asarray(sampler.fn(inputs), dtype=np.float64)
    return np.clip(out, 0.0, 1.0)
