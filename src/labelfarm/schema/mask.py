"""``mask``: pixel masks stored as COCO run-length encodings, each with a label.

A shape is ``{"rle": {"size": [height, width], "counts": ...}, "label"}`` plus the common
``attributes``, ``group``, ``score`` and ``meta`` (see :mod:`labelfarm.schema.shapes`).
``counts`` is either the uncompressed list of run lengths (column-major, starting with
background) or COCO's compressed string; the form given is kept, so a round trip writes
the same bytes.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from labelfarm.schema.base import FieldError, register
from labelfarm.schema.shapes import ShapeList


def decode_counts(s: str) -> list[int]:
    """COCO's compressed RLE string to run lengths (the inverse of :func:`encode_counts`)."""
    counts: list[int] = []
    p = 0
    while p < len(s):
        x = k = 0
        more = True
        while more:
            if p >= len(s):
                raise ValueError("the compressed counts end in the middle of a number")
            c = ord(s[p]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"character {s[p]!r} cannot appear in compressed counts")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def encode_counts(counts: list[int]) -> str:
    """Run lengths to COCO's compressed RLE string."""
    out = []
    for i, cnt in enumerate(counts):
        x = cnt - counts[i - 2] if i > 2 else cnt
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def rle_counts(rle: dict[str, Any]) -> list[int]:
    counts = rle["counts"]
    return decode_counts(counts) if isinstance(counts, str) else list(counts)


def rle_area(rle: dict[str, Any]) -> int:
    return sum(rle_counts(rle)[1::2])


def rle_to_mask(rle: dict[str, Any]) -> np.ndarray:
    h, w = rle["size"]
    flat = np.zeros(h * w, dtype=bool)
    pos, value = 0, False
    for n in rle_counts(rle):
        if value:
            flat[pos : pos + n] = True
        pos += n
        value = not value
    return flat.reshape((w, h)).T  # column-major, as COCO stores it


def rle_bbox(rle: dict[str, Any]) -> list[float]:
    """[x, y, w, h] of the mask's set pixels, as pycocotools' ``toBbox``."""
    m = rle_to_mask(rle)
    ys, xs = np.nonzero(m)
    if not len(xs):
        return [0.0, 0.0, 0.0, 0.0]
    return [
        float(xs.min()),
        float(ys.min()),
        float(xs.max() - xs.min() + 1),
        float(ys.max() - ys.min() + 1),
    ]


def check_rle(rle: Any, where: str) -> dict[str, Any]:
    if not isinstance(rle, dict) or set(rle) != {"size", "counts"}:
        raise FieldError("'rle' is {size: [height, width], counts: [...] or string}", where)
    size = rle["size"]
    if (
        not isinstance(size, list)
        or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in size)
    ):
        raise FieldError(
            f"'size' is [height, width] in whole pixels, got {size!r}", f"{where}.size"
        )
    counts = rle["counts"]
    if isinstance(counts, str):
        try:
            runs = decode_counts(counts)
        except ValueError as exc:
            raise FieldError(str(exc), f"{where}.counts") from None
    elif isinstance(counts, list):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in counts):
            raise FieldError("run lengths are whole numbers", f"{where}.counts")
        runs = counts
    else:
        raise FieldError("'counts' is a list of run lengths or a string", f"{where}.counts")
    if any(v < 0 for v in runs):
        raise FieldError("run lengths must not be negative", f"{where}.counts")
    if sum(runs) != size[0] * size[1]:
        raise FieldError(
            f"run lengths add up to {sum(runs)}, not {size[0]} × {size[1]} pixels",
            f"{where}.counts",
        )
    return {"size": list(size), "counts": counts if isinstance(counts, str) else list(counts)}


@register
class Mask(ShapeList):
    type_name = "mask"
    noun = "mask"
    shape_keys: ClassVar[frozenset[str]] = frozenset({"rle"})

    def _geometry(self, shape: dict[str, Any], where: str) -> dict[str, Any]:
        return {"rle": check_rle(shape.get("rle"), f"{where}.rle")}

    def overlap(self, a: dict[str, Any], b: dict[str, Any]) -> float:
        if a["rle"]["size"] != b["rle"]["size"]:
            return 0.0
        ma, mb = rle_to_mask(a["rle"]), rle_to_mask(b["rle"])
        union = np.logical_or(ma, mb).sum()
        return float(np.logical_and(ma, mb).sum() / union) if union else 1.0
