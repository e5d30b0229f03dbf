"""Fashion-MNIST as a labelfarm project, for ``bench/models.py``.

The images are written as PNG files with a JSONL file naming them (``media``), and imported
with ``labelfarm import`` (the way a team brings a folder of photos in). The test images
carry their answer as control ``gold``: they form the held-out evaluation set and never
train. The training images' labels are submitted by a few annotators through the API, in
batches (``next`` with ``n``, one ``submit`` per batch): the labels a model trains on are
labels people gave in labelfarm.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from PIL import Image

from _targets import Api, BenchError
from labelfarm.sample_data import FASHION_CLASSES, load_fashion_mnist

FIELD = "label"
SCHEMA: dict[str, Any] = {
    "data": {"image": "image"},
    "fields": [{"name": FIELD, "type": "choice", "options": list(FASHION_CLASSES)}],
}
FILL_BATCH = 500


@dataclass
class Split:
    """Which images of a split are used: file names and their class names."""

    prefix: str  # "train" | "test"
    names: list[str]
    labels: list[str]


def write_split(folder: Path, split: str, n: int, gold: bool) -> tuple[Path, Split]:
    """The first ``n`` images of a Fashion-MNIST split as PNGs and a JSONL naming them."""
    data = load_fashion_mnist("train" if split == "train" else "t10k")
    n = min(n, len(data.labels))
    out = folder / split
    out.mkdir(parents=True, exist_ok=True)
    names, labels, lines = [], [], []
    for i in range(n):
        name = f"{split}-{i:05d}.png"
        Image.fromarray(np.ascontiguousarray(data.images[i])).save(out / name, compress_level=1)
        label = data.classes[int(data.labels[i])]
        row: dict[str, Any] = {"data": {"image": name}, "media": name, "external_id": name}
        if gold:
            row["gold"] = {FIELD: label}
            row["gold_kind"] = "control"
        names.append(name)
        labels.append(label)
        lines.append(orjson.dumps(row))
    path = out / "items.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path, Split(split, names, labels)


def submit_labels(base_url: str, project_id: int, tokens: list[str], split: Split) -> int:
    """The training labels, submitted by ``len(tokens)`` annotators in parallel batches."""
    truth = dict(zip(split.names, split.labels, strict=True))
    with ThreadPoolExecutor(len(tokens)) as pool:
        counts = list(pool.map(lambda t: _fill(base_url, project_id, t, truth), tokens))
    if sum(counts) != len(truth):
        raise BenchError(f"labelled {sum(counts)} of {len(truth)} training images")
    return sum(counts)


def _fill(base_url: str, project_id: int, token: str, truth: dict[str, str]) -> int:
    api = Api(base_url, f"Bearer {token}")
    done = 0
    try:
        while done <= len(truth):
            got = api.call("POST", f"/api/v1/projects/{project_id}/next", json={"n": FILL_BATCH})
            tasks = got["tasks"]
            if not tasks:
                return done
            answers = [
                {
                    "id": f"bench-{t['task']}",
                    "task": t["task"],
                    "value": {FIELD: truth[t["data"]["image"]]},
                    "duration_ms": 1500,
                }
                for t in tasks
            ]
            api.call("POST", f"/api/v1/projects/{project_id}/submit", json={"annotations": answers})
            done += len(tasks)
        raise BenchError("the queue handed out more items than the project holds")
    finally:
        api.close()


def item_ids(api: Api, project_id: int) -> dict[str, int]:
    """external id -> item id of every item of the project, read page by page."""
    found: dict[str, int] = {}
    after = 0
    while True:
        page = api.call(
            "GET", f"/api/v1/projects/{project_id}/items", params={"after": after, "limit": 1000}
        )
        rows = page["items"] if isinstance(page, dict) else page
        if not rows:
            return found
        for row in rows:
            found[str(row["external_id"])] = int(row["id"])
        after = max(int(r["id"]) for r in rows)
