"""A predictor made of a feature extractor and logistic-regression heads.

Subclasses say how items become a feature matrix (``_fit_features`` learns what the
extraction needs, e.g. a scaler or a vocabulary; ``_features`` applies it) and what state to
save besides the heads. Training is deterministic: same items, labels and parameters give the
same probabilities, and a loaded model predicts exactly what the saved one did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from labelfarm.errors import InvalidInput
from labelfarm.ml.predictors.base import (
    FieldSpec,
    ItemInput,
    Param,
    check_fields,
    float_in,
    int_in,
    read_blob,
    resolve_params,
    write_blob,
)
from labelfarm.ml.predictors.heads import ChoiceHead, MultiHead, fit_heads, predict_heads

HEAD_PARAMS = {
    "c": Param(1.0, "inverse regularisation strength of the logistic regression",
               float_in(1e-6, 1e6), "a number in [1e-6, 1e6]"),
    "max_iter": Param(100, "most L-BFGS iterations per logistic regression (bounds the time)",
                      int_in(1, 10_000), "an integer in [1, 10000]"),
}  # fmt: skip


class LinearPredictor:
    name: ClassVar[str] = ""
    version: ClassVar[int] = 1
    input: ClassVar[str] = "image"  # "image" | "text"
    extra: ClassVar[str | None] = None  # the pip extra it needs, if any
    summary: ClassVar[str] = ""
    embedding: ClassVar[str] = "the standardised feature vector the heads read"
    params_spec: ClassVar[dict[str, Param]] = HEAD_PARAMS

    def __init__(self, fields: Sequence[FieldSpec], params: Mapping[str, Any] | None = None):
        self.fields = check_fields(self.name, fields)
        self.params = resolve_params(self.name, self.params_spec, params)
        self._heads: dict[str, ChoiceHead | MultiHead] | None = None

    @classmethod
    def available(cls) -> str | None:
        """None when it can run here, else why not (and how to install what it lacks)."""
        return None

    # -- what subclasses provide ------------------------------------------------------------
    def _fit_features(self, items: Sequence[ItemInput]) -> np.ndarray:
        raise NotImplementedError

    def _features(self, items: Sequence[ItemInput]) -> np.ndarray:
        raise NotImplementedError

    def _state(self) -> dict[str, Any]:
        return {}

    def _set_state(self, state: dict[str, Any]) -> None:
        pass

    # -- the protocol ---------------------------------------------------------------------
    def fit(
        self, items: Sequence[ItemInput], labels: Mapping[str, Sequence[Any]]
    ) -> LinearPredictor:
        if not items:
            raise InvalidInput(f"{self.name}: no items to learn from")
        x = self._fit_features(items)
        self._heads = fit_heads(
            x, self.fields, labels, c=float(self.params["c"]), max_iter=self.params["max_iter"]
        )
        return self

    def _fitted(self) -> dict[str, ChoiceHead | MultiHead]:
        if self._heads is None:
            raise InvalidInput(f"{self.name}: the model is not trained yet")
        return self._heads

    def predict_proba(self, items: Sequence[ItemInput]) -> dict[str, np.ndarray]:
        heads = self._fitted()
        return predict_heads(heads, self.fields, self._features(items))

    def embed(self, items: Sequence[ItemInput]) -> np.ndarray | None:
        self._fitted()
        return np.asarray(self._features(items), dtype=np.float32)

    def save(self) -> bytes:
        state = {"heads": self._fitted(), **self._state()}
        return write_blob(self.name, self.version, self.fields, self.params, state)

    @classmethod
    def load(cls, blob: bytes) -> LinearPredictor:
        header, state = read_blob(cls.name, cls.version, blob)
        fields = [FieldSpec.from_dict(f) for f in header["fields"]]
        predictor = cls(fields, header["params"])
        predictor._heads = state.pop("heads")
        predictor._set_state(state)
        return predictor

    @classmethod
    def describe(cls) -> dict[str, Any]:
        reason = cls.available()
        return {
            "name": cls.name,
            "input": cls.input,
            "extra": cls.extra,
            "available": reason is None,
            "reason": reason,
            "summary": cls.summary,
            "embedding": cls.embedding,
            "params": [p.describe(n) for n, p in cls.params_spec.items()],
        }
