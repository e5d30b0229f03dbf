"""Helpers of the page tests: the real app in-process (``AppTransport``) on a small world."""

from __future__ import annotations

import httpx
from lf_world import PASSWORD, World

from labelfarm.client import AppTransport
from labelfarm.web.app import create_app

HTML = {"Accept": "text/html,application/xhtml+xml"}


class Site:
    def __init__(self, world: World) -> None:
        self.world = world
        self.app = create_app(world.settings)
        self.transport = AppTransport(self.app)

    def client(self, username: str | None = None) -> httpx.Client:
        """A browser-like client, signed in as ``username`` (cookie + CSRF header)."""
        # identity: AppTransport hands on bodies httpx already decoded, with their headers
        client = httpx.Client(
            transport=self.transport,
            base_url="http://testserver",
            headers={"Accept-Encoding": "identity"},
        )
        if username:
            r = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
            r.raise_for_status()
            client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
            client.cookies.update(r.cookies)
        return client
