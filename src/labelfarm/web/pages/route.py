"""``PageRoute``: the route class of HTML pages.

Page routes declare their policy like every route (``Depends(require(POLICY))``); this class
only changes how a refusal looks in a browser (a request that accepts ``text/html``): a caller
who is not signed in is sent to the login page (and back afterwards), any other error is an
HTML page with the same status. Other clients get the one JSON error body, as from the API.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from labelfarm.errors import LabelfarmError, NotAuthenticated
from labelfarm.web.pages.redirects import same_origin_path
from labelfarm.web.pages.render import error_page


class PageRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            if "text/html" not in request.headers.get("accept", ""):
                return await handler(request)
            try:
                return await handler(request)
            except NotAuthenticated:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                back = same_origin_path(target, "")
                login = f"/login?next={quote(back, safe='')}" if back else "/login"
                return RedirectResponse(login, status_code=303)
            except LabelfarmError as exc:
                return await error_page(request, exc)

        return page_handler
