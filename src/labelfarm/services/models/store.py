"""The model store: trained models and their training sets, as files on any fsspec filesystem.

Keys are paths below the root (``settings.resolved_model_root``: ``DATA_DIR/models`` unless
``LABELFARM_MODEL_ROOT`` names another place, e.g. ``s3://bucket/models``)::

    projects/{project}/models/{version}/model.bin          the saved predictor
    projects/{project}/models/{version}/training-set.json  what it learnt from

A file is written under a temporary name and moved into place, so a reader never sees half
of one; writing a key again replaces it (a retried training run does).
"""

from __future__ import annotations

import os
import uuid

import fsspec

from labelfarm.settings import Settings


class ModelStore:
    def __init__(self, root: str) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(root)
        self.fs.makedirs(self.root, exist_ok=True)

    def path(self, key: str) -> str:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"not a key of the model store: {key!r}")
        return f"{self.root}/{key}"

    def put(self, key: str, data: bytes) -> None:
        dest = self.path(key)
        self.fs.makedirs(os.path.dirname(dest), exist_ok=True)
        tmp = f"{dest}.{uuid.uuid4().hex[:8]}.part"
        with self.fs.open(tmp, "wb") as out:
            out.write(data)
        self.fs.mv(tmp, dest)

    def get(self, key: str) -> bytes:
        data: bytes = self.fs.cat_file(self.path(key))
        return data

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self.path(key)))


def version_key(project_id: int, version: int, name: str) -> str:
    """The key of a version's file ``name`` (``model.bin``, ``training-set.json``)."""
    return f"projects/{project_id}/models/{version}/{name}"


def model_store(settings: Settings) -> ModelStore:
    return ModelStore(str(settings.resolved_model_root))
