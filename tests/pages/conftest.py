"""Page tests: the real app in-process (``AppTransport``) on a small world (``lf_world``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lf_site import Site
from lf_world import build_world


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    world = build_world(tmp_path_factory.mktemp("pages") / "data", n_images=3, n_choice=12)
    s = Site(world)
    yield s
    s.transport.close()
