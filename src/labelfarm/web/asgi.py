"""The ASGI entry point for uvicorn: ``uvicorn labelfarm.web.asgi:create --factory``."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from labelfarm.settings import Settings
from labelfarm.web.app import create_app


def create() -> FastAPI:
    app = create_app(Settings())
    # The app's long-lived objects (routes, schemas, SQLAlchemy metadata, modules) would be
    # rescanned by every full garbage collection; freezing them keeps collections short, so
    # they do not show up as latency spikes on the annotators' requests.
    gc.collect()
    gc.freeze()
    return app
