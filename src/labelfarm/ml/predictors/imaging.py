"""Images as arrays: decoding item media in batches, and histogram-of-oriented-gradients features.

The HOG here is the classic Dalal-Triggs recipe in plain numpy, vectorised over a batch:
centred gradients, unsigned orientations in ``bins`` bins (linear vote between the two nearest),
``cell``×``cell`` pixel cells, 2×2-cell blocks normalised with L2-Hys (clip at 0.2).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from labelfarm.errors import InvalidInput
from labelfarm.ml.predictors.base import ItemInput

Image.MAX_IMAGE_PIXELS = 64_000_000  # bounded: a decompression bomb is refused, not decoded


def decode_images(items: Sequence[ItemInput], size: int, colour: bool) -> np.ndarray:
    """``(n, size, size)`` grey or ``(n, size, size, 3)`` colour uint8 pixels of the media."""
    mode = "RGB" if colour else "L"
    shape = (len(items), size, size, 3) if colour else (len(items), size, size)
    out = np.empty(shape, dtype=np.uint8)
    for i, item in enumerate(items):
        if item.media is None:
            raise InvalidInput(f"item {item.id} has no image to read")
        try:
            with Image.open(io.BytesIO(item.media)) as src:
                src.draft(mode, (size, size))  # JPEG: decode at a reduced scale when it can
                im = src.convert(mode)
                if im.size != (size, size):
                    im = im.resize((size, size), Image.Resampling.BILINEAR)
                out[i] = np.asarray(im)
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
            raise InvalidInput(f"item {item.id}: its media is not a readable image ({e})") from e
    return out


def grey(pixels: np.ndarray) -> np.ndarray:
    """Float32 grey levels in [0, 1] from grey or RGB uint8 pixels."""
    x = pixels.astype(np.float32) / 255.0
    if x.ndim == 4:
        x = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return x


def hog(pixels: np.ndarray, *, cell: int = 4, bins: int = 9) -> np.ndarray:
    """HOG descriptors, ``(n, (cy-1) * (cx-1) * 4 * bins)`` float32, of a batch of images."""
    x = grey(pixels)
    n, h, w = x.shape
    cy, cx = h // cell, w // cell
    if cy < 2 or cx < 2:
        raise InvalidInput(f"HOG needs images of at least {2 * cell} pixels a side")
    x = x[:, : cy * cell, : cx * cell]
    gx = np.zeros_like(x)
    gy = np.zeros_like(x)
    gx[:, :, 1:-1] = x[:, :, 2:] - x[:, :, :-2]
    gy[:, 1:-1, :] = x[:, 2:, :] - x[:, :-2, :]
    mag = np.hypot(gx, gy)
    pos = (np.arctan2(gy, gx) % np.pi) * np.float32(bins / np.pi)
    b0 = np.minimum(pos.astype(np.int64), bins - 1)
    w1 = pos - b0
    b1 = (b0 + 1) % bins
    rows = np.arange(cy * cell) // cell
    cols = np.arange(cx * cell) // cell
    cell_of = (rows[:, None] * cx + cols[None, :]).astype(np.int64)  # pixel -> cell
    base = (np.arange(n, dtype=np.int64)[:, None, None] * (cy * cx) + cell_of) * bins
    size = n * cy * cx * bins
    votes = np.bincount((base + b0).ravel(), (mag * (1 - w1)).ravel(), size)
    votes += np.bincount((base + b1).ravel(), (mag * w1).ravel(), size)
    hist = votes.astype(np.float32).reshape(n, cy, cx, bins)
    blocks = np.concatenate(
        [hist[:, :-1, :-1], hist[:, 1:, :-1], hist[:, :-1, 1:], hist[:, 1:, 1:]], axis=3
    )
    blocks /= np.sqrt((blocks**2).sum(axis=3, keepdims=True) + 1e-6)
    np.minimum(blocks, 0.2, out=blocks)
    blocks /= np.sqrt((blocks**2).sum(axis=3, keepdims=True) + 1e-6)
    return blocks.reshape(n, -1)
