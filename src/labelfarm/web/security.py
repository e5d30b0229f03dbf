"""Security headers on every response (pure ASGI: no per-request task overhead).

A header the response already carries is kept as it is: a route that declares its own
Content-Security-Policy (media answers: a sandbox) gets exactly that one, not the page's too.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def page_csp(media_origin: str = "") -> str:
    """The pages' policy; a separate media origin (``LABELFARM_MEDIA_ORIGIN``) may be loaded
    and fetched from, nothing else outside the server."""
    media = f" {media_origin}" if media_origin else ""
    return (
        f"default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src 'self' data: blob:{media}; media-src 'self' blob:{media}; "
        f"connect-src 'self'{media}; font-src 'self'; object-src 'none'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


CSP = page_csp()


def headers_for(csp: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-security-policy", csp.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (b"x-frame-options", b"DENY"),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]


HEADERS = headers_for(CSP)


class SecurityHeaders:
    def __init__(self, app: ASGIApp, csp: str = CSP) -> None:
        self.app = app
        self.headers = headers_for(csp)
        self.names = frozenset(name for name, _ in self.headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                own = {name for name, _ in headers if name in self.names}
                message["headers"] = headers + (
                    [h for h in self.headers if h[0] not in own] if own else self.headers
                )
            await send(message)

        await self.app(scope, receive, send_with_headers)
