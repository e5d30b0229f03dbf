"""A real ``label-studio-ml`` 1.0.9 backend (backend/serve.py) as its own process, bound to
127.0.0.1, from the environment ``scripts/test.sh`` builds (``LABELFARM_LS_ML``, by default
``~/.cache/labelfarm/label-studio-ml-1.0.9``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

VERSION = "1.0.9"
VENV_ENV = "LABELFARM_LS_ML"
HERE = Path(__file__).resolve().parent


def find_venv() -> tuple[Path | None, str]:
    """The label-studio-ml environment, or None and why there is none."""
    given = os.environ.get(VENV_ENV)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    venv = Path(given) if given else cache / "labelfarm" / f"label-studio-ml-{VERSION}"
    found = (venv / "lib").glob(f"python3*/site-packages/label_studio_ml-{VERSION}.dist-info")
    if not (venv / "bin" / "python").exists() or not any(found):
        origin = f"{VENV_ENV}={given}" if given else f"the default {venv} ({VENV_ENV} unset)"
        return None, (
            f"no label-studio-ml {VERSION} environment at {origin}: run scripts/test.sh once "
            f"(it installs label-studio-ml=={VERSION}, redis and rq there), or point {VENV_ENV} "
            "at a virtual environment holding them"
        )
    return venv, ""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RealBackend:
    url: str
    fit_log: Path
    auth: tuple[str, str] | None

    def fits(self) -> list[str]:
        """The events fit() was called for, so far."""
        if not self.fit_log.exists():
            return []
        return [line for line in self.fit_log.read_text().splitlines() if line]


def start(venv: Path, workdir: Path, auth: tuple[str, str] | None) -> Iterator[RealBackend]:
    port = _free_port()
    fit_log = workdir / "fit.log"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "LENGTH_MODEL_FIT_LOG": str(fit_log),
    }
    if auth:
        env["LENGTH_MODEL_AUTH"] = ":".join(auth)
    log = (workdir / "server.log").open("wb")
    cmd = [str(venv / "bin" / "python"), str(HERE / "backend" / "serve.py")]
    proc = subprocess.Popen(
        [*cmd, "127.0.0.1", str(port), str(workdir)],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the backend exited: {(workdir / 'server.log').read_text()}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code in (200, 401):
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the backend did not start within 60 s")
            time.sleep(0.2)
        yield RealBackend(url, fit_log, auth)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        log.close()


def wait_for(check: Any, seconds: float = 30) -> Any:
    """``check()`` once it is truthy; fails after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)
