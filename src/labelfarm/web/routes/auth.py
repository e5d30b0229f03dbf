"""Browser sign-in: a session cookie (HttpOnly, SameSite=Lax) plus a CSRF token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from labelfarm.services import users
from labelfarm.web.context import AppContext, ctx_of
from labelfarm.web.policies import AUTHENTICATED, PUBLIC, SESSION_COOKIE, Access, require
from labelfarm.web.responses import JSON, ok
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


@router.post("/login")
async def login(
    request: Request, body: LoginBody, _: Annotated[Access, Depends(require(PUBLIC))]
) -> JSON:
    ctx = ctx_of(request)
    session = await ctx.run(
        users.log_in,
        body.username,
        body.password,
        now=ctx.now(),
        session_hours=ctx.settings.session_hours,
    )
    response = ok({"user": session["user"], "csrf_token": session["csrf_token"]})
    set_session_cookie(response, ctx, session["secret"])
    return response


@router.post("/logout")
async def logout(request: Request, _: Annotated[Access, Depends(require(AUTHENTICATED))]) -> JSON:
    ctx = ctx_of(request)
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        await ctx.run(users.end_session, secret)
    response = ok({"status": "signed out"})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
