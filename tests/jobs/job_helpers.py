"""Helpers of the job tests."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any


def worker_command(*extra: str) -> list[str]:
    return [sys.executable, "-m", "labelfarm.cli", "worker", "--import", "job_test_kinds", *extra]


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    """Poll ``check`` until it answers something true; its answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or check}")
