"""Rendering pages: the Jinja2 environment, the interface language, HTML responses.

Templates get ``t`` (the catalogue of the chosen language), ``static`` (versioned asset
URLs), the signed-in user and the CSRF token. Pages are ``private, no-cache`` with an ETag,
so a reload costs one conditional request answered 304.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.exc import SQLAlchemyError

from labelfarm import i18n
from labelfarm.errors import LabelfarmError
from labelfarm.services import users
from labelfarm.web.context import ctx_of
from labelfarm.web.pages.assets import VERSION, module_urls, static_url
from labelfarm.web.pages.field_support import schema_gaps
from labelfarm.web.policies import SESSION_COOKIE, Access

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
LANG_COOKIE = "labelfarm_lang"

env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.globals.update(static=static_url, module_urls=module_urls, static_version=VERSION)
env.globals["schema_gaps"] = schema_gaps  # what the annotate page cannot show (a warning)


async def current_user(request: Request, access: Access) -> dict[str, Any] | None:
    if access.principal is None:
        return None
    return await ctx_of(request).run(users.get_user, access.user_id)


def language(request: Request, user: dict[str, Any] | None = None) -> str:
    """``?lang=``, then the language cookie, the user's locale, the browser's languages."""
    return i18n.pick_language(
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        (user or {}).get("locale"),
        accept_language=request.headers.get("accept-language", ""),
    )


def html(request: Request, body: str, status: int = 200, lang: str | None = None) -> Response:
    etag = f'"{hashlib.sha256(body.encode()).hexdigest()[:20]}"'
    headers = {"Cache-Control": "private, no-cache", "ETag": etag, "Vary": "Cookie"}
    if status == 200 and request.headers.get("if-none-match") == etag:
        response: Response = Response(status_code=304, headers=headers)
    else:
        response = HTMLResponse(body, status_code=status, headers=headers)
    if lang and request.query_params.get("lang") == lang:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", path="/")
    return response


async def page(
    request: Request,
    template: str,
    access: Access,
    *,
    status: int = 200,
    user: dict[str, Any] | None = None,
    **values: Any,
) -> Response:
    """Render ``template`` for the caller, in the caller's language."""
    user = user or await current_user(request, access)
    lang = language(request, user)
    cat = i18n.catalogue(lang)
    body = env.get_template(template).render(
        t=cat.t,
        lang=lang,
        direction=cat.direction,
        languages=i18n.languages(),
        user=user,
        csrf_token=access.principal.csrf_token if access.principal else "",
        path=request.url.path,
        **values,
    )
    return html(request, body, status, lang)


async def _session_user(request: Request) -> tuple[dict[str, Any] | None, str]:
    """The signed-in user of a browser request and their CSRF token, if any: an error page
    speaks their language (the policy that refused them did not hand on who they are)."""
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        return None, ""
    ctx = ctx_of(request)
    try:
        principal = await ctx.run(users.principal_for_session, secret, ctx.now())
        if principal is None:
            return None, ""
        return await ctx.run(users.get_user, principal.user_id), principal.csrf_token or ""
    except (LabelfarmError, SQLAlchemyError):  # the error page itself must not fail
        return None, ""


def _refusal(exc: LabelfarmError, cat: i18n.Catalogue) -> dict[str, str]:
    """What a refused page may say of why, translated: the caller's role and the roles
    allowed (never the internal names of policies, nor the English meant for API clients)."""
    for detail in exc.details:
        if detail.get("reason") == "role" and "role" in detail:
            allowed = ", ".join(cat.t(f"role.{r}") for r in detail.get("allowed", []))
            return {"role": cat.t(f"role.{detail['role']}"), "allowed": allowed}
    return {}


async def error_page(request: Request, exc: LabelfarmError) -> Response:
    """The error as a page in the caller's language: its title and a translated detail."""
    user, csrf_token = await _session_user(request)
    lang = language(request, user)
    cat = i18n.catalogue(lang)
    body = env.get_template("error.html").render(
        t=cat.t,
        lang=lang,
        direction=cat.direction,
        languages=i18n.languages(),
        user=user,
        csrf_token=csrf_token,
        path=request.url.path,
        status=exc.status,
        code=exc.code,
        refusal=_refusal(exc, cat),
    )
    return html(request, body, exc.status, lang)
