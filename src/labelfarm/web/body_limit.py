"""Request bodies are bounded (pure ASGI: no per-request task, no copy of the body).

Every request may send at most ``limit`` bytes (``LABELFARM_MAX_REQUEST_BYTES``); an import
upload, at most ``upload_limit`` (``LABELFARM_MAX_UPLOAD_BYTES``). A declared
``Content-Length`` over the limit is refused at once, before a byte of the body is read;
the server then delivers at most the declared length, so nothing else is needed. A body
without a declared length (chunked) is counted as the route reads it and refused as soon
as it crosses the limit. Either way the answer is 413 with the usual error body.
"""

from __future__ import annotations

import re

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from labelfarm.errors import error_body

_NO_BODY = frozenset({"GET", "HEAD", "OPTIONS"})


def _mib(n: int) -> str:
    return f"{n / (1 << 20):g} MiB"


def _message(limit: int) -> str:
    return f"the request body is larger than {_mib(limit)}"


class BodyLimit:
    def __init__(
        self, app: ASGIApp, *, limit: int, upload_limit: int, upload_path: re.Pattern[str]
    ) -> None:
        self.app = app
        self.limit = limit
        self.upload_limit = upload_limit
        self.upload_path = upload_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _NO_BODY:
            await self.app(scope, receive, send)
            return
        limit = self.limit
        if scope["method"] == "POST" and self.upload_path.fullmatch(scope["path"]):
            limit = self.upload_limit
        declared: bytes | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = True
        if declared is not None and not chunked:
            if not declared.isdigit() or int(declared) > limit:
                await _refuse(send, limit)
                return
            await self.app(scope, receive, send)
            return
        await self.app(scope, _counting(receive, limit), send)


def _counting(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise HTTPException(413, _message(limit))
        return message

    return counted


async def _refuse(send: Send, limit: int) -> None:
    body = orjson.dumps(error_body("too_large", _message(limit)))
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
