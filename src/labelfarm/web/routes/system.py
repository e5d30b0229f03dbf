"""Health and identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from labelfarm.services import users
from labelfarm.web.context import ctx_of
from labelfarm.web.models.admin import Me
from labelfarm.web.models.common import Status
from labelfarm.web.policies import AUTHENTICATED, PUBLIC, Access, require
from labelfarm.web.responses import JSON, documented, ok

router = APIRouter()


@router.get("/healthz", tags=["system"], **documented(Status))
async def health(request: Request, _: Annotated[Access, Depends(require(PUBLIC))]) -> JSON:
    return ok({"status": "ok"})


@router.get("/api/v1/me", tags=["auth"], **documented(Me, 401))
async def me(request: Request, access: Annotated[Access, Depends(require(AUTHENTICATED))]) -> JSON:
    return ok(await ctx_of(request).run(users.me, access.user_id))
