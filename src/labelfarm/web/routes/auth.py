"""Browser sign-in: a session cookie (HttpOnly, SameSite=Lax) plus a CSRF token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy import Connection

from labelfarm.services import audit, users
from labelfarm.web.context import AppContext
from labelfarm.web.policies import AUTHENTICATED, PUBLIC, SESSION_COOKIE, Access, require
from labelfarm.web.responses import JSON, ok
from labelfarm.web.schemas import LoginBody

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


def login_user(conn: Connection, ctx: AppContext, username: str, password: str) -> dict:
    """Check credentials, open a session, audit the login; returns user, secret, csrf."""
    now = ctx.now()
    user = users.authenticate(conn, username, password)
    secret, csrf = users.create_session(
        conn, user_id=user["id"], now=now, hours=ctx.settings.session_hours
    )
    audit.record(conn, action="login", target=f"user:{user['id']}", now=now, actor_id=user["id"])
    return {"user": user, "secret": secret, "csrf_token": csrf}


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


def _failed_login(conn: Connection, ctx: AppContext, username: str) -> None:
    audit.record(conn, action="login.failed", target=f"username:{username[:100]}", now=ctx.now())


@router.post("/login")
async def login(
    request: Request, body: LoginBody, _: Annotated[Access, Depends(require(PUBLIC))]
) -> JSON:
    ctx: AppContext = request.app.state.ctx
    try:
        result = await ctx.write(login_user, ctx, body.username, body.password)
    except Exception:
        await ctx.write(_failed_login, ctx, body.username)
        raise
    response = ok({"user": result["user"], "csrf_token": result["csrf_token"]})
    set_session_cookie(response, ctx, result["secret"])
    return response


@router.post("/logout")
async def logout(request: Request, _: Annotated[Access, Depends(require(AUTHENTICATED))]) -> JSON:
    ctx: AppContext = request.app.state.ctx
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        await ctx.write(users.end_session, secret)
    response = ok({"status": "signed out"})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
