"""Browser sign-in: a session cookie (HttpOnly, SameSite=Lax) plus a CSRF token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from labelfarm.errors import NotAuthenticated
from labelfarm.services import users
from labelfarm.web import login_limits
from labelfarm.web.context import AppContext, ctx_of
from labelfarm.web.models.admin import Session
from labelfarm.web.models.common import Status
from labelfarm.web.policies import AUTHENTICATED, PUBLIC, SESSION_COOKIE, Access, require
from labelfarm.web.responses import JSON, documented, ok
from labelfarm.web.schemas import LoginBody

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


def set_session_cookie(response: JSON, ctx: AppContext, secret: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(ctx.settings.session_hours * 3600),
        httponly=True,
        samesite="lax",
        secure=ctx.settings.secure_cookies,
        path="/",
    )


def client_address(request: Request) -> str:
    """The caller's address, through trusted proxies (see :mod:`labelfarm.web.login_limits`)."""
    ctx = ctx_of(request)
    peer = request.client.host if request.client else None
    return login_limits.client_address(
        peer, request.headers.getlist("x-forwarded-for"), ctx.trusted_proxies
    )


@router.post("/login", **documented(Session, 401, 413, 422, 429, 503))
async def login(
    request: Request, body: LoginBody, _: Annotated[Access, Depends(require(PUBLIC))]
) -> JSON:
    """Sign in. Failed attempts are limited per address and per (account, address), checked
    before any hashing (429 with Retry-After), and audited in aggregate."""
    ctx = ctx_of(request)
    address = client_address(request)
    ctx.logins.attempt(address, body.username, ctx.now())
    try:
        session = await ctx.run(
            users.log_in,
            body.username,
            body.password,
            now=ctx.now(),
            session_hours=ctx.settings.session_hours,
        )
    except NotAuthenticated:
        now = ctx.now()
        ctx.logins.failed(address, body.username, now)
        ctx.tally.add("login.failed", f"address:{address}", now=now)
        ctx.tally.add("login.failed.username", f"username:{body.username[:100]}", now=now)
        raise
    except BaseException:
        ctx.logins.undone(address, body.username)  # the password was not checked
        raise
    ctx.logins.succeeded(address, body.username)
    response = ok({"user": session["user"], "csrf_token": session["csrf_token"]})
    set_session_cookie(response, ctx, session["secret"])
    return response


@router.post("/logout", **documented(Status, 401, 403, 413))
async def logout(request: Request, _: Annotated[Access, Depends(require(AUTHENTICATED))]) -> JSON:
    ctx = ctx_of(request)
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        await ctx.run(users.end_session, secret, now=ctx.now())
    response = ok({"status": "signed out"})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
