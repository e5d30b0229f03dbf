"""Round trips through a real Label Studio 1.23.2.

One server for the whole session, started on first use from the environment
``scripts/test.sh`` prepares (``LABELFARM_LABEL_STUDIO``, by default
``~/.cache/labelfarm/label-studio-1.23.2``); without it every test here is skipped with the
reason. Every test here is marked ``slow``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ls_cases import ANA, BEN
from ls_server import ADMIN_EMAIL, LabelStudioAPI, LabelStudioServer, find_venv


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    venv, why = find_venv()
    for item in items:
        if Path(str(item.fspath)).resolve().parent == here:
            item.add_marker(pytest.mark.slow)
            if venv is None:
                item.add_marker(pytest.mark.skip(reason=why))


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudioAPI]:
    """A running Label Studio and its API, as its administrator."""
    venv, why = find_venv()
    if venv is None:
        pytest.skip(why)
    server = LabelStudioServer(venv, tmp_path_factory.mktemp("label-studio"))
    try:
        server.start()
        with LabelStudioAPI(server.url, server.token, server.files) as api:
            yield api
    finally:
        server.stop()


@pytest.fixture(scope="session")
def ls_users(label_studio: LabelStudioAPI) -> dict[str, int]:
    """Label Studio user ids by email: the administrator and two annotators."""
    users = {email: label_studio.user_id(email) for email in (ADMIN_EMAIL, ANA, BEN)}
    return {email: uid or label_studio.create_user(email) for email, uid in users.items()}
