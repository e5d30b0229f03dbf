"""The data of ``bench/label_errors.py``: Fashion-MNIST images, injected label noise, and
simulated annotators (the noise model of ``_crowd.py``).

Noise kinds (the share of wrong labels is the rate, 20% or 40%):

* ``uniform``: a wrong label is any other class, uniformly;
* ``similar``: a wrong label is a look-alike class (:data:`NEAR`): the tops (T-shirt/top,
  pullover, coat, shirt) among themselves, the shoes (sandal, sneaker, ankle boot) among
  themselves, trouser <-> dress, bag -> pullover or coat.

Single labels: each item's label is wrong with probability ``rate`` (exactly ``rate`` of the
items, chosen at random). Crowd: each item gets 3 answers from 3 different annotators of a
pool of 12 (:func:`crowd_pool`: accuracies from 0.97 down, mean ``1 - rate``; their wrong
answers follow the noise kind) and its label is the plurality vote (ties broken at random):
the errors to find are the items whose plurality label is wrong.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from labelfarm.ml.predictors.base import ItemInput
from labelfarm.sample_data import load_fashion_mnist

N_CLASSES = 10
NEAR: dict[int, tuple[int, ...]] = {
    0: (2, 4, 6),  # T-shirt/top -> pullover, coat, shirt
    2: (0, 4, 6),
    4: (0, 2, 6),
    6: (0, 2, 4),
    5: (7, 9),  # sandal -> sneaker, ankle boot
    7: (5, 9),
    9: (5, 7),
    1: (3,),  # trouser -> dress
    3: (1,),
    8: (2, 4),  # bag -> pullover, coat
}
N_ANNOTATORS, PER_ITEM = 12, 3


@dataclass
class Images:
    items: list[ItemInput]  # PNG bytes as media: what the image predictors read
    truth: np.ndarray


def load_images(n: int) -> Images:
    """The first ``n`` training images of Fashion-MNIST as PNG-bearing predictor inputs."""
    data = load_fashion_mnist("train")
    items = []
    for i in range(n):
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(data.images[i])).save(buf, "PNG", compress_level=1)
        items.append(ItemInput(i + 1, {"image": f"train-{i:05d}.png"}, buf.getvalue()))
    return Images(items, data.labels[:n].astype(np.int64))


def wrong_answer(y: int, kind: str, rng: np.random.Generator) -> int:
    if kind == "similar":
        return int(rng.choice(NEAR[y]))
    return int(rng.choice([c for c in range(N_CLASSES) if c != y]))


def single_labels(truth: np.ndarray, rate: float, kind: str, seed: int) -> np.ndarray:
    """Exactly ``round(rate * n)`` items, chosen at random, get a wrong label."""
    rng = np.random.default_rng([seed, 1])
    labels = truth.copy()
    flipped = rng.choice(len(truth), size=round(rate * len(truth)), replace=False)
    for i in flipped:
        labels[i] = wrong_answer(int(truth[i]), kind, rng)
    return labels


def crowd_pool(rate: float) -> np.ndarray:
    """The annotators' accuracies: evenly spread from 0.97 down, with mean ``1 - rate``."""
    top = 0.97
    low = 2 * (1 - rate) - top
    return np.linspace(top, low, N_ANNOTATORS)


@dataclass
class Crowd:
    items: np.ndarray  # long format: item index, annotator index, answer
    annotators: np.ndarray
    answers: np.ndarray
    labels: np.ndarray  # the plurality vote per item

    def wide(self, n: int) -> np.ndarray:
        """items x annotators, NaN where an annotator did not answer (cleanlab's format)."""
        out = np.full((n, N_ANNOTATORS), np.nan)
        out[self.items, self.annotators] = self.answers
        return out


def crowd_labels(truth: np.ndarray, rate: float, kind: str, seed: int) -> Crowd:
    rng = np.random.default_rng([seed, 2])
    accuracy = crowd_pool(rate)
    n = len(truth)
    items = np.repeat(np.arange(n), PER_ITEM)
    who = np.concatenate([rng.choice(N_ANNOTATORS, PER_ITEM, replace=False) for _ in range(n)])
    answers = np.empty(len(items), dtype=np.int64)
    for j, (i, a) in enumerate(zip(items, who, strict=True)):
        y = int(truth[i])
        answers[j] = y if rng.random() < accuracy[a] else wrong_answer(y, kind, rng)
    counts = np.zeros((n, N_CLASSES))
    np.add.at(counts, (items, answers), 1.0)
    top = counts == counts.max(axis=1, keepdims=True)
    noise = rng.random((n, N_CLASSES))
    labels = np.argmax(np.where(top, noise, -1.0), axis=1).astype(np.int64)
    return Crowd(items, who.astype(np.int64), answers, labels)
