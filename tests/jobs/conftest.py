"""Fixtures of the job tests: settings with short leases and retries, a worker, the test-only
job kinds, and the environment a ``labelfarm`` subprocess needs to use the test database."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import job_test_kinds  # noqa: F401  (registers the test-only kinds)
import pytest

from labelfarm.jobs.worker import Worker
from labelfarm.services import job_queue
from labelfarm.settings import Settings

HERE = Path(__file__).resolve().parent
LEASE = 2.0


@pytest.fixture
def job_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"job_lease_seconds": LEASE, "job_retry_seconds": 10.0, "worker_poll_seconds": 0.1}
    )


@pytest.fixture
def make_worker(world: Any, job_settings: Settings) -> Callable[..., Worker]:
    def make(name: str = "w1", **kw: Any) -> Worker:
        return Worker(job_settings, world.db, world.ctx.media, name=name, **kw)

    return make


@pytest.fixture
def enqueue(world: Any) -> Callable[..., int]:
    def add(kind: str, params: dict[str, Any] | None = None, **kw: Any) -> int:
        return world.db.run(
            job_queue.enqueue, kind=kind, params=params or {}, now=time.time(), **kw
        )

    return add


@pytest.fixture
def worker_env(job_settings: Settings) -> dict[str, str]:
    """The environment of a ``labelfarm worker`` subprocess on the test's database."""
    path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    return {
        **os.environ,
        "PYTHONPATH": path,
        "LABELFARM_DATABASE_URL": job_settings.database_url,
        "LABELFARM_DATA_DIR": str(job_settings.data_dir),
        "LABELFARM_SECRET_KEY": "test-secret",
        "LABELFARM_JOB_LEASE_SECONDS": str(LEASE),
        "LABELFARM_WORKER_POLL_SECONDS": "0.1",
        "LABELFARM_REFIT_SECONDS": "0",
    }
