"""The simulated labelling loop of ``bench/active_learning.py``: the pool, the model, one run.

A run starts from the seed set, then repeats: train the predictor on the labelled pool items,
measure its accuracy on the test set, stop when it reaches the target (or the label cap), else
let the strategy pick the next batch among the unlabelled pool items and reveal their labels.
"""

from __future__ import annotations

import io
import json
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from labelfarm.ml import samplers
from labelfarm.ml.predictors import FieldSpec, ItemInput, Predictor, create
from labelfarm.sample_data import load_fashion_mnist

PREDICTOR = "image-hog-logreg.v1"
FIELD = "label"
PEER = "skactiveml"


@dataclass(frozen=True)
class Plan:
    pool: int  # training images the strategies pick from
    test: int  # test images every model is measured on
    seeds: int
    seed_labels: int = 100
    batch: int = 100
    max_labels: int = 5_000  # a run that has not reached the target by then stops (censored)
    pair_max_labels: int = 2_000  # the same for confusion_pair (targeted, not for accuracy)
    share: float = 0.95  # of the accuracy with every pool label
    pair: tuple[str, str] = ("tshirt_top", "shirt")  # confusion_pair's target
    candidates: int = 10_000  # unlabelled pool items a round's strategy chooses among


@dataclass
class Pool:
    items: list[ItemInput]
    truth: np.ndarray
    test_items: list[ItemInput]
    test_truth: np.ndarray
    field: FieldSpec
    raw: np.ndarray = field(repr=False)  # raw features of pool then test items, by item id


@dataclass
class Run:
    strategy: str
    seed: int
    curve: list[tuple[int, float]]  # (labels, test accuracy) after each round
    reached: int | None  # labels at the first round whose accuracy reached the target
    pick_seconds: list[float]  # time the strategy took to pick each batch


def _png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def load_pool(plan: Plan) -> Pool:
    """``plan.pool`` training images drawn at random (seed 0) and the first ``plan.test`` test
    images, as PNG items; the predictor's raw features of each computed once."""
    train, test = load_fashion_mnist("train"), load_fashion_mnist("t10k")
    chosen = np.sort(np.random.default_rng(0).choice(len(train.labels), plan.pool, replace=False))
    items = [ItemInput(n, {}, _png(train.images[i])) for n, i in enumerate(chosen)]
    test_items = [ItemInput(plan.pool + n, {}, _png(test.images[n])) for n in range(plan.test)]
    spec = FieldSpec(FIELD, "choice", tuple(train.classes))
    extractor: Any = create(PREDICTOR, [spec])
    raw = np.concatenate([extractor._raw(items), extractor._raw(test_items)])
    return Pool(
        items,
        train.labels[chosen].astype(np.int64),
        test_items,
        test.labels[: plan.test].astype(np.int64),
        spec,
        raw,
    )


def make_model(pool: Pool) -> Predictor:
    """The predictor, its raw feature extraction (PNG decoding + HOG, a pure function of the
    image) answered from the pool's precomputed features; everything else is its own code."""
    model: Any = create(PREDICTOR, [pool.field])
    model._raw = lambda items: pool.raw[np.fromiter((it.id for it in items), np.int64)]
    return model  # type: ignore[no-any-return]


def fit(pool: Pool, positions: np.ndarray) -> Predictor:
    names = [pool.field.options[int(c)] for c in pool.truth[positions]]
    return make_model(pool).fit([pool.items[i] for i in positions], {FIELD: names})


def accuracy(model: Predictor, pool: Pool) -> float:
    proba = model.predict_proba(pool.test_items)[FIELD]
    return float((proba.argmax(axis=1) == pool.test_truth).mean())


def full_accuracy(pool: Pool) -> float:
    """The same model's test accuracy with every pool label."""
    return accuracy(fit(pool, np.arange(len(pool.items))), pool)


class Peer:
    """scikit-activeml, in its own venv, answering one query per batch over a pipe."""

    def __init__(self, python: Path, script: Path) -> None:
        # -P: bench/ must not shadow the standard library (bench/queue.py)
        self.proc = subprocess.Popen(
            [str(python), "-P", str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
        )
        self.tmp = tempfile.TemporaryDirectory(prefix="lf-bench-al-")

    def pick(self, proba: np.ndarray, labels: np.ndarray, batch: int, seed: int) -> np.ndarray:
        folder = Path(self.tmp.name)
        np.save(folder / "p.npy", proba)
        np.save(folder / "y.npy", labels)
        request = {"proba": str(folder / "p.npy"), "labels": str(folder / "y.npy")}
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({**request, "batch": batch, "seed": seed}) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline() or '{"error": "the peer exited"}')
        if "error" in answer:
            raise RuntimeError(f"scikit-activeml: {answer['error']}")
        return np.asarray(answer["picked"], np.int64)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.tmp.cleanup()


def seed_set(pool: Pool, plan: Plan, seed: int) -> np.ndarray:
    """The seed's random labelled items, the same for every strategy."""
    rng = np.random.default_rng([seed, 2026])
    return np.sort(rng.choice(len(pool.items), plan.seed_labels, replace=False))


def candidates_of(pool: Pool, plan: Plan, labelled: np.ndarray, seed: int) -> np.ndarray:
    """The round's candidates: ``plan.candidates`` unlabelled pool items drawn at random with a
    generator seeded by (seed, labels so far), the same draw for every strategy that reaches
    the round with the same labelled items; every unlabelled item when fewer."""
    open_ = np.setdiff1d(np.arange(len(pool.items)), labelled)
    if not plan.candidates or len(open_) <= plan.candidates:
        return open_
    rng = np.random.default_rng([seed, len(labelled), 7])
    return np.sort(rng.choice(open_, plan.candidates, replace=False))


def _pick(
    strategy: str,
    seed: int,
    model: Predictor,
    pool: Pool,
    plan: Plan,
    labelled: np.ndarray,
    rng: np.random.Generator,
    peer: Peer | None,
) -> np.ndarray:
    """Pool positions of the next batch."""
    open_ = candidates_of(pool, plan, labelled, seed)
    if strategy == PEER:  # the labelled items then the candidates, as scikit-activeml wants
        assert peer is not None
        shown = np.concatenate([labelled, open_])
        proba = model.predict_proba([pool.items[i] for i in shown])[FIELD]
        labels = np.full(len(shown), -1, np.int64)
        labels[: len(labelled)] = pool.truth[labelled]
        return shown[peer.pick(proba, labels, plan.batch, int(rng.integers(2**31 - 1)))]
    candidates = [pool.items[i] for i in open_]
    proba = model.predict_proba(candidates)[FIELD]
    sampler = samplers.get_sampler(strategy)
    kwargs: dict[str, Any] = {}
    if sampler.needs_embeddings:
        kwargs["embeddings"] = model.embed(candidates)
        kwargs["labeled_embeddings"] = model.embed([pool.items[i] for i in labelled])
    if sampler.needs_pair:
        kwargs["pair"] = tuple(pool.field.options.index(c) for c in plan.pair)
    scores = samplers.score(strategy, proba, rng=rng, **kwargs)
    top = np.lexsort((np.arange(len(scores)), -scores))[: plan.batch]
    return open_[top]


def label_cap(strategy: str, plan: Plan) -> int:
    return plan.pair_max_labels if strategy == "confusion_pair" else plan.max_labels


def run(strategy: str, seed: int, pool: Pool, plan: Plan, target: float, peer: Peer | None) -> Run:
    """One simulated labelling run of ``strategy`` from the seed's seed set."""
    strategies = (*samplers.sampler_names(), PEER)
    rng = np.random.default_rng([seed, strategies.index(strategy)])
    labelled = seed_set(pool, plan, seed)
    result = Run(strategy, seed, [], None, [])
    while True:
        model = fit(pool, labelled)
        acc = accuracy(model, pool)
        result.curve.append((len(labelled), acc))
        if acc >= target:
            result.reached = len(labelled)
            return result
        if len(labelled) >= min(label_cap(strategy, plan), len(pool.items)):
            return result
        t0 = time.perf_counter()
        picked = _pick(strategy, seed, model, pool, plan, labelled, rng, peer)
        result.pick_seconds.append(time.perf_counter() - t0)
        if len(np.intersect1d(picked, labelled)) or len(np.unique(picked)) != len(picked):
            raise RuntimeError(f"{strategy} picked an item twice or a labelled item")
        labelled = np.concatenate([labelled, picked])


def strategies_of(names: Sequence[str] | None) -> list[str]:
    every = [*samplers.sampler_names(), PEER]
    if not names:
        return every
    unknown = [n for n in names if n not in every]
    if unknown:
        raise SystemExit(f"unknown strategies {unknown}; valid: {', '.join(every)}")
    return list(names)
