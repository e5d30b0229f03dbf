"""Media files for tests: a real PNG or JPEG, and a COCO zip carrying any files as images."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping

import numpy as np
from PIL import Image


def png(size: tuple[int, int] = (600, 400), fmt: str = "PNG") -> bytes:
    """A photo-like image (random pixels, so it does not compress away) in ``fmt``."""
    pixels = np.random.default_rng(size[0]).integers(0, 255, (size[1], size[0], 3), np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, fmt)
    return out.getvalue()


def coco_zip(files: Mapping[str, bytes]) -> bytes:
    """A COCO archive whose images are ``files`` (name → bytes), whatever those bytes are."""
    doc = {
        "images": [{"id": i, "file_name": n} for i, n in enumerate(files, 1)],
        "annotations": [],
        "categories": [{"id": 1, "name": "thing"}],
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("annotations/instances.json", json.dumps(doc))
        for name, content in files.items():
            zf.writestr(f"images/{name}", content)
    return out.getvalue()
