"""Helpers for the format tests: a lab that guesses a schema, imports a file into a new
project and exports it again, all through the service functions on the real database."""

from __future__ import annotations

import io
import math
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from labelfarm.errors import ImportFailed
from labelfarm.formats.objects import suggest_schema
from labelfarm.jsonutil import loads
from labelfarm.services.exports import export_stream
from labelfarm.services.imports import ImportResult, import_items

INTEROP = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "interop"


@pytest.fixture
def interop() -> Path:
    if not INTEROP.is_dir():
        pytest.skip(f"interop fixtures not found at {INTEROP} (they live beside the repository)")
    return INTEROP


def close(a: Any, b: Any, path: str = "") -> None:
    """Assert two JSON-like values are equal, numbers within 1e-6."""
    if isinstance(a, bool) or isinstance(b, bool):
        assert a == b, f"{path}: {a!r} != {b!r}"
    elif isinstance(a, int | float) and isinstance(b, int | float):
        assert math.isclose(a, b, abs_tol=1e-6), f"{path}: {a!r} != {b!r}"
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{path}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            close(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


class Lab:
    def __init__(self, world: Any, tmp: Path) -> None:
        self.world = world
        self.tmp = tmp
        self.ws = world.workspace()

    def project(self, schema: dict[str, Any]) -> Any:
        return self.world.project(self.ws, schema=schema, name=f"p-{uuid.uuid4().hex[:6]}")

    def guess(self, fmt: str, path: Path) -> dict[str, Any]:
        return suggest_schema(fmt, path, scratch=self.tmp)

    def import_(self, project: Any, path: Path, fmt: str) -> ImportResult:
        return import_items(
            self.world.db,
            project,
            path,
            fmt,
            media=self.world.ctx.media,
            now=self.world.clock(),
            user_id=None,
            base_dir=path if path.is_dir() else path.parent,
        )

    def fails(self, project: Any, path: Path, fmt: str) -> list[dict[str, Any]]:
        """Import expecting failure; check nothing was left behind; return the details."""
        with pytest.raises(ImportFailed) as info:
            self.import_(project, path, fmt)
        assert self.counts(project) == (0, 0, 0)
        assert info.value.details
        return info.value.details

    def counts(self, project: Any) -> tuple[int, int, int]:
        with self.world.db.begin("read") as conn:
            return tuple(  # type: ignore[return-value]
                conn.execute(
                    text(f"SELECT COUNT(*) FROM {t} WHERE project_id = :p"), {"p": project.id}
                ).scalar_one()
                for t in ("items", "annotations", "predictions")
            )

    def export(self, project: Any, fmt: str) -> bytes:
        chunks, _ = export_stream(
            self.world.db, project, fmt, now=time.time(), actor_id=None, media=self.world.ctx.media
        )
        return b"".join(chunks)

    def unzip(self, data: bytes, dest: Path) -> Path:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            assert zf.testzip() is None
            zf.extractall(dest)
        return dest

    def values(self, project: Any) -> dict[str | None, list[Any]]:
        """Annotation values by item external id, in storage order."""
        with self.world.db.begin("read") as conn:
            rows = conn.execute(
                text(
                    "SELECT i.external_id, a.value FROM annotations a JOIN items i "
                    "ON i.id = a.item_id WHERE a.project_id = :p ORDER BY a.id"
                ),
                {"p": project.id},
            ).all()
        out: dict[str | None, list[Any]] = {}
        for ext, value in rows:
            out.setdefault(ext, []).append(loads(value))
        return out

    def by_item(self, project: Any) -> list[list[Any]]:
        """Annotation values grouped by item, items in id order."""
        with self.world.db.begin("read") as conn:
            rows = conn.execute(
                text(
                    "SELECT item_id, value FROM annotations WHERE project_id = :p "
                    "ORDER BY item_id, id"
                ),
                {"p": project.id},
            ).all()
        out: dict[int, list[Any]] = {}
        for item_id, value in rows:
            out.setdefault(item_id, []).append(loads(value))
        return list(out.values())


@pytest.fixture
def lab(world: Any, tmp_path: Path) -> Lab:
    return Lab(world, tmp_path)
