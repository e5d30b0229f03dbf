"""``labelfarm serve``'s job worker: one ``labelfarm worker`` process, started with the server,
restarted when it dies, stopped when the server stops.

The worker runs in a session of its own, so a Ctrl-C at the terminal reaches the server
alone, which then stops the worker with SIGTERM (the worker gives its running job back to
the queue); it also stops by itself if the server dies without stopping it.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from labelfarm.settings import Settings

log = logging.getLogger("labelfarm.supervise")

RESTART_SECONDS = 1.0  # the first wait before a restart; it doubles while the worker keeps dying
MAX_RESTART_SECONDS = 30.0
HEALTHY_SECONDS = 60.0  # a worker that ran this long died by accident: restart it soon
STOP_SECONDS = 30.0  # how long a stopping worker may take to give its job back


def worker_command(parent_pid: int | None = None) -> list[str]:
    command = [sys.executable, "-m", "labelfarm.cli", "worker"]
    if parent_pid is not None:
        command += ["--exit-with-parent", str(parent_pid)]
    return command


class Supervisor:
    """Keeps one process of ``command`` running until :meth:`stop`."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        restart_seconds: float = RESTART_SECONDS,
        stop_seconds: float = STOP_SECONDS,
        env: dict[str, str] | None = None,
    ) -> None:
        self.command = list(command)
        self.restart_seconds = restart_seconds
        self.stop_seconds = stop_seconds
        self.env = env
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._keep, name="worker-supervisor", daemon=True)

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def start(self) -> Supervisor:
        self._thread.start()
        return self

    def _keep(self) -> None:
        wait = self.restart_seconds
        while True:
            with self._lock:
                if self._stop.is_set():
                    return
                started = time.monotonic()
                self._process = subprocess.Popen(self.command, env=self.env, start_new_session=True)
            code = self._wait(self._process)
            if code is None or self._stop.is_set():  # stopping
                return
            if time.monotonic() - started > HEALTHY_SECONDS:
                wait = self.restart_seconds
            log.warning("the job worker exited (code %s); restarting it in %.0f s", code, wait)
            if self._stop.wait(wait):
                return
            wait = min(wait * 2, MAX_RESTART_SECONDS)
            self.restarts += 1

    def _wait(self, process: subprocess.Popen[bytes]) -> int | None:
        """The process's exit code, or None once :meth:`stop` was called."""
        while not self._stop.is_set():
            try:
                return process.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                continue
        return None

    def stop(self) -> None:
        """Stop the worker (SIGTERM; SIGKILL after ``stop_seconds``) and stop restarting it."""
        with self._lock:
            self._stop.set()
            process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=self.stop_seconds)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._thread.is_alive():
            self._thread.join()


@contextmanager
def supervised_worker(settings: Settings) -> Iterator[Supervisor | None]:
    """One job worker beside the server while inside, unless ``settings.run_worker`` is off."""
    if not settings.run_worker:
        yield None
        return
    supervisor = Supervisor(worker_command(os.getpid())).start()
    try:
        yield supervisor
    finally:
        supervisor.stop()
