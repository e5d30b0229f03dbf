"""Static files (CSS, no-build ES modules) and the service worker, served from memory.

Every asset URL carries the version of the whole static folder (a hash of its contents):
``/static/<version>/js/annotate.js``. Relative imports between modules keep that prefix, so
a new release changes every URL at once and the browser may cache each one for a year
(``immutable``). Text assets are gzipped once at start; every response has an ETag, and a
conditional request answers 304. ``/sw.js`` is the service worker, served from the root so
that it controls the pages, with the list of assets it keeps for offline use.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from labelfarm.errors import NotFound
from labelfarm.web.policies import PUBLIC, Access, require

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
_TEXT = (".js", ".css", ".json", ".svg", ".txt", ".html")

# A plain router: assets are fetched by pages, never navigated to, so errors stay JSON.
router = APIRouter(tags=["pages"])


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    mime: str
    etag: str


def _load(root: Path) -> tuple[dict[str, Asset], str]:
    assets: dict[str, Asset] = {}
    whole = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel == "sw.js" or rel.startswith("."):
            continue
        body = path.read_bytes()
        digest = hashlib.sha256(body).hexdigest()
        whole.update(rel.encode() + b"\0" + digest.encode())
        mime = "text/javascript" if rel.endswith(".js") else mimetypes.guess_type(rel)[0]
        text = rel.endswith(_TEXT)
        assets[rel] = Asset(
            body=body,
            gzipped=gzip.compress(body, 9, mtime=0) if text and len(body) > 512 else None,
            mime=(mime or "application/octet-stream") + ("; charset=utf-8" if text else ""),
            etag=f'"{digest[:20]}"',
        )
    return assets, whole.hexdigest()[:12]


ASSETS, VERSION = _load(STATIC_DIR)


def static_url(rel: str) -> str:
    """The versioned URL of a static file, e.g. ``static_url("js/annotate.js")``."""
    if rel not in ASSETS:
        raise KeyError(f"no static file {rel!r}")
    return f"/static/{VERSION}/{rel}"


def module_urls(prefix: str = "js/", exclude: str = "js/pages/") -> list[str]:
    """Versioned URLs of the ES modules under ``prefix`` (for ``modulepreload``)."""
    return [
        static_url(rel)
        for rel in sorted(ASSETS)
        if rel.startswith(prefix) and not rel.startswith(exclude) and rel.endswith(".js")
    ]


def _respond(request: Request, asset: Asset, cache: str) -> Response:
    headers = {"ETag": asset.etag, "Cache-Control": cache, "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    body = asset.body
    if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        body = asset.gzipped
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=asset.mime, headers=headers)


@router.get("/static/{version}/{path:path}", include_in_schema=False)
async def static_file(
    request: Request, version: str, path: str, _: Annotated[Access, Depends(require(PUBLIC))]
) -> Response:
    """A static file. The current version is cached for a year; another one is revalidated."""
    asset = ASSETS.get(path)
    if asset is None:
        raise NotFound(f"no static file {path!r}")
    return _respond(request, asset, IMMUTABLE if version == VERSION else REVALIDATE)


def _service_worker() -> Asset:
    source = (STATIC_DIR / "sw.js").read_text("utf-8")
    precache = [static_url(rel) for rel in sorted(ASSETS)]
    head = f"const VERSION = {json.dumps(VERSION)};\nconst PRECACHE = {json.dumps(precache)};\n"
    body = (head + source).encode()
    return Asset(
        body=body,
        gzipped=gzip.compress(body, 9, mtime=0),
        mime="text/javascript; charset=utf-8",
        etag=f'"{hashlib.sha256(body).hexdigest()[:20]}"',
    )


SERVICE_WORKER = _service_worker()


@router.get("/sw.js", include_in_schema=False)
async def service_worker(
    request: Request, _: Annotated[Access, Depends(require(PUBLIC))]
) -> Response:
    """The service worker that keeps the annotate page loadable offline."""
    response = _respond(request, SERVICE_WORKER, REVALIDATE)
    response.headers["Service-Worker-Allowed"] = "/"
    return response
