"""The web pages: manager pages, the annotate page, static files, resized images (and the
audio derived from media files, under the same signed URLs).

``router`` holds every page route; the app includes it next to the JSON API.
"""

from __future__ import annotations

from fastapi import APIRouter

from labelfarm.web.pages import (
    annotate,
    assets,
    images,
    jobs,
    learning,
    model_versions,
    quality,
    views,
)
from labelfarm.web.routes import audio

router = APIRouter()
for _module in (assets, images, audio, views, annotate, quality, model_versions, jobs, learning):
    router.include_router(_module.router)

__all__ = ["router"]
