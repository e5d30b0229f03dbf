"""Health and identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy import Connection

from labelfarm.services import users, workspaces
from labelfarm.web.policies import AUTHENTICATED, PUBLIC, Access, require
from labelfarm.web.responses import JSON, ok

router = APIRouter()


@router.get("/healthz", tags=["system"])
async def health(request: Request, _: Annotated[Access, Depends(require(PUBLIC))]) -> JSON:
    return ok({"status": "ok"})


@router.get("/api/v1/me", tags=["auth"])
async def me(request: Request, access: Annotated[Access, Depends(require(AUTHENTICATED))]) -> JSON:
    return ok(await request.app.state.ctx.read(_me, access.user_id))


def _me(conn: Connection, user_id: int) -> dict:
    user = users.get_user(conn, user_id)
    user["workspaces"] = workspaces.workspaces_of(conn, user_id, all_=bool(user["is_superuser"]))
    return user
