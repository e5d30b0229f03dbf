"""A text classifier on character n-grams: TF-IDF over ``char_wb`` n-grams, logistic regression.

Character n-grams need no tokenizer or word list, so Tamil, Hindi, English and text that mixes
scripts work alike. Text is normalised to Unicode NFC first (the same word typed on two
keyboards may arrive composed or decomposed). The text read is ``data[text_key]`` when the
parameter is set, else the item's ``text`` value, else its first string value. ``embed``
answers the heads' decision function (one score per option of each field, fields in order):
the TF-IDF vectors themselves are sparse and as wide as the vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from labelfarm.ml.predictors.base import InvalidParams, ItemInput, Param, int_in, item_text
from labelfarm.ml.predictors.heads import ChoiceHead

if TYPE_CHECKING:
    from sklearn.feature_extraction.text import TfidfVectorizer
from labelfarm.ml.predictors.linear import HEAD_PARAMS, LinearPredictor


def _key(v: Any) -> bool:
    return v is None or (isinstance(v, str) and 0 < len(v) <= 200)


class TextChargramLogreg(LinearPredictor):
    name: ClassVar[str] = "text-chargram-logreg.v1"
    input: ClassVar[str] = "text"
    summary: ClassVar[str] = "character n-gram TF-IDF, logistic regression (any script)"
    embedding: ClassVar[str] = "the logistic regressions' decision function, per option"
    params_spec: ClassVar[dict[str, Param]] = {
        "text_key": Param(None, "the data key holding the text (default: 'text', else the "
                          "first string value)", _key, "a data key or null"),
        "ngram_min": Param(1, "shortest character n-gram", int_in(1, 8), "an integer in [1, 8]"),
        "ngram_max": Param(4, "longest character n-gram", int_in(1, 8), "an integer in [1, 8]"),
        "max_features": Param(200_000, "largest vocabulary kept (most frequent n-grams)",
                              int_in(100, 5_000_000), "an integer in [100, 5000000]"),
        **HEAD_PARAMS,
        "c": Param(10.0, HEAD_PARAMS["c"].help, HEAD_PARAMS["c"].check, HEAD_PARAMS["c"].expect),
    }  # fmt: skip

    def __init__(self, fields: Any, params: Any = None) -> None:
        super().__init__(fields, params)
        if self.params["ngram_min"] > self.params["ngram_max"]:
            raise InvalidParams(
                f"{self.name}: parameter 'ngram_min' must not exceed 'ngram_max'",
                [{"param": "ngram_min", "reason": "must not exceed ngram_max"}],
            )
        self._vectorizer: TfidfVectorizer | None = None

    def _texts(self, items: Sequence[ItemInput]) -> list[str]:
        return [item_text(item, self.params["text_key"]) for item in items]

    def _fit_features(self, items: Sequence[ItemInput]) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer

        p = self.params
        self._vectorizer = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=(p["ngram_min"], p["ngram_max"]),
            max_features=p["max_features"],
            sublinear_tf=True,
            lowercase=True,
            dtype=np.float64,
        )
        return self._vectorizer.fit_transform(self._texts(items))

    def _features(self, items: Sequence[ItemInput]) -> Any:
        assert self._vectorizer is not None
        return self._vectorizer.transform(self._texts(items))

    def embed(self, items: Sequence[ItemInput]) -> np.ndarray | None:
        heads = self._fitted()
        x = self._features(items)
        cols = []
        for spec in self.fields:
            head = heads[spec.name]
            scores = np.zeros((len(items), len(spec.options)), dtype=np.float32)
            if isinstance(head, ChoiceHead):
                if head.model is not None and len(items):
                    d = head.model.decision_function(x)
                    if d.ndim == 1:  # two classes: one score, for the second
                        d = np.stack([-d, d], axis=1)
                    scores[:, head.columns] = d
            else:
                for j, m in enumerate(head.models):
                    if not isinstance(m, float) and len(items):
                        scores[:, j] = m.decision_function(x)
            cols.append(scores)
        return np.hstack(cols)

    def _state(self) -> dict[str, Any]:
        return {"vectorizer": self._vectorizer}

    def _set_state(self, state: dict[str, Any]) -> None:
        self._vectorizer = state["vectorizer"]
