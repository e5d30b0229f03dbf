"""The ASGI entry point for uvicorn: ``uvicorn labelfarm.web.asgi:create --factory``."""

from __future__ import annotations

from fastapi import FastAPI

from labelfarm.settings import Settings
from labelfarm.web.app import create_app


def create() -> FastAPI:
    return create_app(Settings())
