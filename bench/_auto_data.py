"""Fashion-MNIST for ``bench/auto_accept.py``: every image (train then test), in a random order
per seed, and the predictor's raw features (PNG decoding + HOG, a pure function of the image)
computed once and reused by every seed."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from labelfarm.ml.predictors import FieldSpec, ItemInput, Predictor, create
from labelfarm.sample_data import FASHION_CLASSES, load_fashion_mnist

PREDICTOR = "image-hog-logreg.v1"
FIELD = "label"


@dataclass
class Images:
    items: list[ItemInput]  # item i: image i (its id the position)
    truth: np.ndarray  # (n,) class indexes
    raw: np.ndarray  # (n, d) raw features
    spec: FieldSpec


def _png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def load_images(n: int | None) -> Images:
    """The first ``n`` of the 70,000 images (train then test; all with None)."""
    train, test = load_fashion_mnist("train"), load_fashion_mnist("t10k")
    pixels = np.concatenate([train.images, test.images])
    truth = np.concatenate([train.labels, test.labels]).astype(np.int64)
    if n is not None:
        chosen = np.sort(np.random.default_rng(0).choice(len(truth), n, replace=False))
        pixels, truth = pixels[chosen], truth[chosen]
    items = [ItemInput(i, {}, _png(p)) for i, p in enumerate(pixels)]
    spec = FieldSpec(FIELD, "choice", tuple(FASHION_CLASSES))
    extractor: object = create(PREDICTOR, [spec])
    raw = extractor._raw(items)  # type: ignore[attr-defined]
    return Images(items, truth, raw, spec)


def make_model(images: Images, params: dict) -> Predictor:
    """The predictor, its raw feature extraction answered from the precomputed features;
    everything else (standardising, the logistic regression) is its own code."""
    model: object = create(PREDICTOR, [images.spec], params)
    model._raw = lambda items: images.raw[np.fromiter((it.id for it in items), np.int64)]  # type: ignore[attr-defined]
    return model  # type: ignore[return-value]
