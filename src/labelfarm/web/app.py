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
from starlette.routing import Route, compile_path

from labelfarm import __version__
from labelfarm.db.engine import Database, migrate
from labelfarm.errors import LabelfarmError, error_body
from labelfarm.services import audit
from labelfarm.services.imports import recover_imports
from labelfarm.services.media import MediaStore
from labelfarm.settings import Settings
from labelfarm.web.background import lifespan
from labelfarm.web.body_limit import BodyLimit
from labelfarm.web.context import AppContext
from labelfarm.web.pages import router as pages_router
from labelfarm.web.policies import Policy, declared_policy
from labelfarm.web.responses import JSON
from labelfarm.web.routes import (
    admin,
    annotate,
    asr,
    auth,
    data,
    media,
    ml_backends,
    projects,
    quality,
    system,
    transcripts,
)
from labelfarm.web.routes import asr_quality as asr_quality_routes
from labelfarm.web.routes import correction_rounds as correction_round_routes
from labelfarm.web.routes import data_jobs as data_job_routes
from labelfarm.web.routes import from_file as project_from_file
from labelfarm.web.routes import jobs as job_routes
from labelfarm.web.routes import models as model_routes
from labelfarm.web.routes import progress as my_progress
from labelfarm.web.routes import standing as my_standing
from labelfarm.web.security import SecurityHeaders, page_csp

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
    db = Database(
        settings.resolved_database_url, settings.hot_connections, settings.sqlite_synchronous
    )
    audit.use_key(db, settings.resolved_audit_key)
    if run_migrations:
        migrate(db)
        recover_imports(db, clock())
    ctx = AppContext(
        settings=settings,
        db=db,
        media=MediaStore(
            settings.resolved_media_root, settings.resolved_secret_key, settings.media_origin
        ),
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
    for module in (
        annotate,
        media,
        system,
        auth,
        admin,
        projects,
        project_from_file,
        data,
        quality,
        my_progress,
        my_standing,
        job_routes,
        ml_backends,
        data_job_routes,
        model_routes,
        asr,
        transcripts,
        asr_quality_routes,
        correction_round_routes,
    ):
        app.include_router(module.router)
    app.include_router(pages_router)  # web pages, static files, resized images, checkout
    _error_handlers(app)
    app.add_middleware(
        BodyLimit,
        limit=settings.max_request_bytes,
        upload_limit=settings.max_upload_bytes,
        upload_path=data.UPLOAD_PATH,
    )
    app.add_middleware(SecurityHeaders, csp=page_csp(settings.media_origin))
    return app


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LabelfarmError)
    async def labelfarm_error(request: Request, exc: LabelfarmError) -> JSON:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        if exc.retry_after is not None:
            headers["Retry-After"] = str(exc.retry_after)
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
        if exc.status_code == 400:  # a body that could not be parsed: invalid, like any other
            details = [{"field": "body", "reason": str(exc.detail)}]
            return JSON(error_body("invalid_input", "the request is not valid", details), 422)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # the router names one route's methods: name the path's
            headers["Allow"] = ", ".join(allowed_methods(app, request.url.path))
        return JSON(error_body(code, str(exc.detail)), exc.status_code, headers=headers)

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


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the routes matching ``path`` answer: a 405's ``Allow``."""
    table = getattr(app.state, "method_table", None)
    if table is None:
        paths: dict[str, set[str]] = {}
        for method, template, _ in api_routes(app):
            paths.setdefault(template, set()).add(method)
        for route in app.router.routes:
            if isinstance(route, Route):
                paths.setdefault(route.path, set()).update(route.methods or ())
        table = app.state.method_table = [
            (compile_path(template)[0], methods) for template, methods in paths.items()
        ]
    return sorted({m for pattern, methods in table if pattern.match(path) for m in methods})


def route_policy(route: APIRoute) -> Policy | None:
    """The policy a route declared through ``require``, if any."""
    for dep in route.dependant.dependencies:
        policy = declared_policy(dep.call)
        if policy is not None:
            return policy
    return None
