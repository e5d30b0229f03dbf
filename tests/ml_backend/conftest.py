"""External model servers: a real ``label-studio-ml`` 1.0.9 backend as its own process
(:mod:`ml_server`); without its environment the tests needing it are skipped with the
reason. Tests that need a server to misbehave use the stand-in
``tests/model_server_stub.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ml_server import RealBackend, find_venv, start


@pytest.fixture
def real_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealBackend]:
    venv, why = find_venv()
    if venv is None:
        pytest.skip(why)
    yield from start(venv, tmp_path_factory.mktemp("ls-ml"), None)


@pytest.fixture
def real_backend_with_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealBackend]:
    venv, why = find_venv()
    if venv is None:
        pytest.skip(why)
    yield from start(venv, tmp_path_factory.mktemp("ls-ml-auth"), ("labelfarm", "s3cret pass"))
