"""Image classifiers on scikit-learn: resized pixels and/or HOG, standardised, logistic regression.

Images are decoded from the items' media bytes with Pillow, converted to grey (or RGB with
``colour``) and resized to ``size``×``size``. The features are the pixels scaled to [0, 1],
the HOG descriptor of the grey image, or both side by side; each column is standardised with
the training set's mean and deviation. ``embed`` answers these standardised features.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from labelfarm.errors import InvalidInput
from labelfarm.ml.predictors.base import ItemInput, Param, int_in, one_of
from labelfarm.ml.predictors.imaging import decode_images, hog
from labelfarm.ml.predictors.linear import HEAD_PARAMS, LinearPredictor

CHUNK = 1024  # images decoded and described at once: bounds the temporary arrays


def column_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations in float64, a chunk of rows at a time (no copy)."""
    mean = x.mean(axis=0, dtype=np.float64)
    squares = np.zeros(x.shape[1], dtype=np.float64)
    for start in range(0, len(x), CHUNK):
        d = x[start : start + CHUNK].astype(np.float64) - mean
        squares += np.einsum("ij,ij->j", d, d)
    return mean, np.sqrt(squares / max(len(x), 1))


def _image_params(*, hog_default: bool, pixels_default: bool, c: float) -> dict[str, Param]:
    flag = one_of(True, False)
    return {
        "size": Param(28, "side in pixels the images are resized to", int_in(8, 128),
                      "an integer in [8, 128]"),
        "colour": Param(False, "use RGB pixels instead of grey", flag, "true or false"),
        "pixels": Param(pixels_default, "include the resized pixels", flag, "true or false"),
        "hog": Param(hog_default, "include HOG features of the grey image", flag,
                     "true or false"),
        "hog_cell": Param(4, "HOG cell side in pixels", int_in(2, 32), "an integer in [2, 32]"),
        **HEAD_PARAMS,
        "c": Param(c, HEAD_PARAMS["c"].help, HEAD_PARAMS["c"].check, HEAD_PARAMS["c"].expect),
    }  # fmt: skip


class ImageLogreg(LinearPredictor):
    input: ClassVar[str] = "image"

    def __init__(self, fields: Any, params: Any = None) -> None:
        super().__init__(fields, params)
        if not (self.params["pixels"] or self.params["hog"]):
            raise InvalidInput(f"{self.name}: parameters 'pixels' and 'hog' cannot both be false")
        self._mean: np.ndarray | None = None
        self._scale: np.ndarray | None = None

    def _raw(self, items: Sequence[ItemInput]) -> np.ndarray:
        """The unscaled features, filled chunk by chunk into one float32 matrix."""
        p = self.params
        out: np.ndarray | None = None
        for start in range(0, len(items), CHUNK):
            pixels = decode_images(items[start : start + CHUNK], p["size"], p["colour"])
            cols = []
            if p["pixels"]:
                cols.append(pixels.reshape(len(pixels), -1).astype(np.float32) / 255.0)
            if p["hog"]:
                cols.append(hog(pixels, cell=p["hog_cell"]))
            width = sum(c.shape[1] for c in cols)
            if out is None:
                out = np.empty((len(items), width), dtype=np.float32)
            at = 0
            for c in cols:
                out[start : start + len(pixels), at : at + c.shape[1]] = c
                at += c.shape[1]
        if out is None:  # no items
            return np.zeros((0, 0 if self._mean is None else len(self._mean)), np.float32)
        return out

    def _fit_features(self, items: Sequence[ItemInput]) -> np.ndarray:
        x = self._raw(items)
        mean, std = column_stats(x)
        self._mean = mean.astype(np.float32)
        self._scale = np.where(std > 1e-8, std, 1.0).astype(np.float32)
        return self._standardise(x)

    def _standardise(self, x: np.ndarray) -> np.ndarray:
        assert self._mean is not None and self._scale is not None
        x -= self._mean
        x /= self._scale
        return x

    def _features(self, items: Sequence[ItemInput]) -> np.ndarray:
        return self._standardise(self._raw(items))

    def _state(self) -> dict[str, Any]:
        return {"mean": self._mean, "scale": self._scale}

    def _set_state(self, state: dict[str, Any]) -> None:
        self._mean, self._scale = state["mean"], state["scale"]


class ImagePixelsLogreg(ImageLogreg):
    name: ClassVar[str] = "image-pixels-logreg.v1"
    summary: ClassVar[str] = "resized grey (or colour) pixels, logistic regression"
    params_spec: ClassVar[dict[str, Param]] = _image_params(
        hog_default=False, pixels_default=True, c=0.1
    )


class ImageHogLogreg(ImageLogreg):
    name: ClassVar[str] = "image-hog-logreg.v1"
    summary: ClassVar[str] = "HOG features and resized pixels, logistic regression"
    params_spec: ClassVar[dict[str, Param]] = _image_params(
        hog_default=True, pixels_default=True, c=0.1
    )
