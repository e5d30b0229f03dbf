"""Real sample data found on the machine, for the demo and the benchmarks.

Fashion-MNIST comes from Debian's ``dataset-fashion-mnist`` package when it is installed;
otherwise scikit-learn's bundled handwritten digits stand in. Nothing is downloaded.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = (
    "tshirt_top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle_boot",
)
DIGIT_CLASSES = tuple(f"digit_{i}" for i in range(10))


@dataclass
class ImageSet:
    name: str
    images: np.ndarray  # N × H × W, uint8
    labels: np.ndarray  # N, int
    classes: tuple[str, ...]


def _idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    magic = struct.unpack(">I", raw[:4])[0]
    ndim = magic & 0xFF
    shape = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def fashion_mnist_available() -> bool:
    return (FASHION_DIR / "t10k-images-idx3-ubyte.gz").exists()


def load_fashion_mnist(split: str = "t10k") -> ImageSet:
    """Fashion-MNIST ``t10k`` (10,000 images) or ``train`` (60,000), from Debian's package."""
    if not fashion_mnist_available():
        raise FileNotFoundError(
            "Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist"
        )
    images = _idx(FASHION_DIR / f"{split}-images-idx3-ubyte.gz")
    labels = _idx(FASHION_DIR / f"{split}-labels-idx1-ubyte.gz").astype(np.int64)
    return ImageSet("fashion-mnist", images, labels, FASHION_CLASSES)


def load_digits() -> ImageSet:
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    images = (d.images * (255.0 / 16.0)).astype(np.uint8)
    return ImageSet("sklearn-digits", images, d.target.astype(np.int64), DIGIT_CLASSES)


def product_images() -> ImageSet:
    """Fashion-MNIST when installed, else the digits."""
    return load_fashion_mnist() if fashion_mnist_available() else load_digits()
