"""Page tests: the real app in-process (``AppTransport``) on a small world (``lf_world``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lf_world import PASSWORD, World, build_world  # noqa: E402

from labelfarm.client import AppTransport  # noqa: E402
from labelfarm.web.app import create_app  # noqa: E402

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


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    world = build_world(tmp_path_factory.mktemp("pages") / "data", n_images=3, n_choice=12)
    s = Site(world)
    yield s
    s.transport.close()
