"""The registry of predictors by versioned name.

A name never changes meaning: a predictor whose features or saved format change gets a new
name (``.v2``), so every stored model version can still be loaded by the name it records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from labelfarm.ml.predictors.base import (
    FieldSpec,
    Predictor,
    PredictorUnavailable,
    UnknownPredictor,
    read_header,
)
from labelfarm.ml.predictors.image_cnn import ImageCnnTorch
from labelfarm.ml.predictors.image_logreg import ImageHogLogreg, ImagePixelsLogreg
from labelfarm.ml.predictors.image_nsfw import ImageNsfwLogreg
from labelfarm.ml.predictors.linear import LinearPredictor
from labelfarm.ml.predictors.text_e5 import TextE5Logreg
from labelfarm.ml.predictors.text_logreg import TextChargramLogreg

PREDICTORS: dict[str, type[LinearPredictor]] = {
    cls.name: cls
    for cls in (
        ImagePixelsLogreg,
        ImageHogLogreg,
        TextChargramLogreg,
        TextE5Logreg,
        ImageNsfwLogreg,
        ImageCnnTorch,
    )
}


def names() -> tuple[str, ...]:
    return tuple(PREDICTORS)


def _class(name: str) -> type[LinearPredictor]:
    cls = PREDICTORS.get(name)
    if cls is None:
        raise UnknownPredictor(
            f"unknown predictor {name!r}; valid names: {', '.join(PREDICTORS)}",
            [{"predictor": name, "valid": list(PREDICTORS)}],
        )
    reason = cls.available()
    if reason:
        raise PredictorUnavailable(reason, [{"predictor": name, "extra": cls.extra}])
    return cls


def create(
    name: str, fields: Sequence[FieldSpec], params: Mapping[str, Any] | None = None
) -> Predictor:
    """A new, untrained predictor; unknown names, missing extras and bad params are refused."""
    return cast(Predictor, _class(name)(fields, params))


def load(name: str, blob: bytes) -> Predictor:
    """The predictor saved in ``blob``, which must have been saved by ``name``."""
    return cast(Predictor, _class(name).load(blob))


def saved_by(blob: bytes) -> str:
    """The predictor name a saved model's header records."""
    return str(read_header(blob)["predictor"])


def describe() -> list[dict[str, Any]]:
    """Every predictor: name, input, extra, whether it runs here (and why not), parameters."""
    return [cls.describe() for cls in PREDICTORS.values()]
