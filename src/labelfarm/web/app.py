"""The app factory: ``create_app(settings)`` returns a FastAPI app ready to serve."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from labelfarm import __version__
from labelfarm.db.engine import Database, migrate
from labelfarm.errors import LabelfarmError, error_body
from labelfarm.services.imports import recover_imports
from labelfarm.services.media import MediaStore
from labelfarm.settings import Settings
from labelfarm.web.background import lifespan
from labelfarm.web.context import AppContext
from labelfarm.web.pages import router as pages_router
from labelfarm.web.policies import Policy, declared_policy
from labelfarm.web.responses import JSON
from labelfarm.web.routes import admin, annotate, auth, data, media, projects, quality, system
from labelfarm.web.security import SecurityHeaders

log = logging.getLogger("labelfarm")

_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    401: "not_authenticated",
    403: "forbidden",
    413: "too_large",
}


def create_app(
    settings: Settings | None = None,
    *,
    clock: Callable[[], float] = time.time,
    run_migrations: bool = True,
) -> FastAPI:
    settings = settings or Settings()
    db = Database(settings.resolved_database_url, settings.hot_connections)
    if run_migrations:
        migrate(db)
        recover_imports(db, clock())
    ctx = AppContext(
        settings=settings,
        db=db,
        media=MediaStore(settings.resolved_media_root, settings.resolved_secret_key),
        clock=clock,
    )
    app = FastAPI(
        title="labelfarm",
        version=__version__,
        docs_url=None,  # the built-in docs pages load scripts from a CDN
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
        default_response_class=JSON,
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    # Routes are matched in order: the annotators' hot path (next, submit, media) first.
    for module in (annotate, media, system, auth, admin, projects, data, quality):
        app.include_router(module.router)
    app.include_router(pages_router)  # web pages, static files, resized images, checkout
    _error_handlers(app)
    app.add_middleware(SecurityHeaders)
    return app


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LabelfarmError)
    async def labelfarm_error(request: Request, exc: LabelfarmError) -> JSON:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSON(exc.body(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSON:
        details = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"),
                "reason": err.get("msg", ""),
            }
            for err in exc.errors()
        ]
        return JSON(error_body("invalid_input", "the request is not valid", details), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSON:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return JSON(error_body(code, str(exc.detail)), exc.status_code)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSON:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSON(error_body("internal", "internal error; it has been logged"), 500)


def api_routes(app: FastAPI) -> list[tuple[str, str, Any]]:
    """Every (method, path, APIRoute) the app serves, including those of included routers."""
    out: list[tuple[str, str, Any]] = []

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            original = getattr(route, "original_router", None)
            if original is not None:
                context = getattr(route, "include_context", None)
                walk(original.routes, prefix + (getattr(context, "prefix", "") or ""))
            elif isinstance(route, APIRoute):
                for method in sorted(route.methods or ()):
                    out.append((method, prefix + route.path, route))

    walk(app.router.routes, "")
    return out


def route_policy(route: APIRoute) -> Policy | None:
    """The policy a route declared through ``require``, if any."""
    for dep in route.dependant.dependencies:
        policy = declared_policy(dep.call)
        if policy is not None:
            return policy
    return None
