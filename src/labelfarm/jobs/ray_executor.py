"""Heavy work as tasks on an existing Ray cluster (``LABELFARM_RAY_ADDRESS``).

The job row stays the record: the worker that claimed the job submits its tasks, waits for
their results, writes progress and results itself, and keeps the job's heartbeat. A process
connects once, on first use; it never starts a Ray instance of its own. Each task takes one
CPU and is retried by Ray when its worker process or node is lost; when it is lost for good
the job is retried by the queue. Cancelling the job force-cancels the outstanding tasks
(killing their worker processes, so a task stuck in native code stops too).

Ray is the ``ray`` extra (``pip install 'labelfarm[ray]'``), installed at the same version
with labelfarm on every node of the cluster: tasks import labelfarm there. See docs/jobs.md.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, TypeVar

from labelfarm.jobs.errors import ExecutorError, JobCancelled

R = TypeVar("R")
log = logging.getLogger("labelfarm.jobs")

#: how often a waiting map looks at ``cancelled()`` (seconds)
POLL_SECONDS = 0.25
#: Ray's own retries of a task whose worker process or node died
MAX_RETRIES = 2
#: tasks in flight per CPU of the cluster: enough to keep it busy, few enough to keep the
#: memory of a long map flat
IN_FLIGHT_PER_CPU = 2
CONNECT_TIMEOUT_SECONDS = 5.0
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Ray replaces a loopback address by the machine's own address unless told otherwise (a
# cluster on one machine bound to 127.0.0.1 would then be out of reach).
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"

_lock = threading.Lock()
_connected: str | None = None  # the address this process is connected to
_remotes: dict[Callable[..., Any], Any] = {}


def import_ray(address: str = "") -> ModuleType:
    """The ``ray`` module, or an :class:`ExecutorError` saying how to install it."""
    if _host(address) in LOOPBACK:
        os.environ.setdefault(LOOPBACK_ENV, "0")
    try:
        import ray
    except ImportError as exc:
        raise ExecutorError(
            "LABELFARM_RAY_ADDRESS is set but Ray is not installed here: "
            "pip install 'labelfarm[ray]'"
        ) from exc
    return ray


def connect(address: str) -> ModuleType:
    """Connect this process to the cluster at ``address`` (once); the ``ray`` module.
    An :class:`ExecutorError` (retryable) when the cluster cannot be reached."""
    global _connected
    if address.strip().lower() == "local":
        raise ExecutorError(
            "LABELFARM_RAY_ADDRESS=local would start a Ray instance inside the job worker; "
            "give the address of a running cluster (host:port or ray://host:10001)"
        )
    ray = import_ray(address)
    with _lock:
        if _connected == address and ray.is_initialized():
            return ray
        _check_reachable(ray, address)
        if _connected is not None and ray.is_initialized():
            ray.shutdown()  # the address changed
            _remotes.clear()
        try:
            ray.init(
                address=address,
                ignore_reinit_error=True,
                namespace="labelfarm",
                logging_level=logging.WARNING,
                log_to_driver=False,
            )
        except Exception as exc:
            raise ExecutorError(
                f"cannot connect to the Ray cluster at {address}: {exc}", retryable=True
            ) from exc
        _connected = address
        log.info("connected to the Ray cluster at %s", address)
    return ray


def disconnect() -> None:
    """Leave the cluster (the next use connects again)."""
    global _connected
    with _lock:
        if _connected is not None:
            import ray

            ray.shutdown()
        _connected = None
        _remotes.clear()


def _host(address: str) -> str:
    hostport = address.removeprefix("ray://").rsplit("/", 1)[0]
    host = hostport.rsplit(":", 1)[0] if ":" in hostport else hostport
    return host.strip("[]").lower()


def _check_reachable(ray: ModuleType, address: str) -> None:
    """Fail within seconds when nothing listens at the address (``ray.init`` would keep
    trying for minutes). ``auto`` is left to Ray."""
    if address == "auto":
        return
    target = address.removeprefix("ray://")
    if not address.startswith("ray://"):
        try:  # where Ray will really connect (it may rewrite a loopback address)
            target = ray._private.services.canonicalize_bootstrap_address(address) or target
        except Exception as exc:
            raise ExecutorError(f"LABELFARM_RAY_ADDRESS {address!r}: {exc}") from exc
    host, _, port = target.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT_SECONDS).close()
    except (OSError, ValueError) as exc:
        raise ExecutorError(
            f"cannot reach the Ray cluster at {address} ({target}): {exc}", retryable=True
        ) from exc


def _remote(ray: ModuleType, fn: Callable[..., Any]) -> Any:
    with _lock:
        remote = _remotes.get(fn)
        if remote is None:
            remote = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(fn)
            _remotes[fn] = remote
        return remote


def failure(ray: ModuleType, exc: BaseException) -> ExecutorError:
    """What a failed task's error means to the job: its own exception is final; a lost
    worker process, node or object (after Ray's retries) is worth running the job again."""
    errors = ray.exceptions
    if isinstance(exc, errors.RayTaskError):
        cause = exc.cause if isinstance(exc.cause, BaseException) else exc
        return ExecutorError(f"{type(cause).__name__}: {cause}", retryable=False)
    if isinstance(exc, errors.TaskUnschedulableError | errors.RuntimeEnvSetupError):
        return ExecutorError(f"Ray cannot run the task: {_first_line(exc)}", retryable=False)
    return ExecutorError(
        f"the Ray cluster lost the task ({type(exc).__name__}): {_first_line(exc)}",
        retryable=True,
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class RayExecutor:
    """Runs calls as Ray tasks on the cluster at ``address``."""

    name = "ray"

    def __init__(self, address: str, *, max_in_flight: int | None = None) -> None:
        self.address = address
        self.max_in_flight = max_in_flight

    def call(
        self,
        fn: Callable[..., R],
        arg: Any,
        *,
        cancelled: Callable[[], bool],
        shared: Any = None,
    ) -> R:
        results: list[R] = []
        self.map(
            fn, [arg], on_result=lambda _i, r: results.append(r), cancelled=cancelled, shared=shared
        )
        return results[0]

    def map(
        self,
        fn: Callable[..., R],
        args: Sequence[Any],
        *,
        on_result: Callable[[int, R], None],
        cancelled: Callable[[], bool],
        shared: Any = None,
    ) -> None:
        """At most ``max_in_flight`` tasks (default: twice the cluster's CPUs) are out at
        once; each result goes to ``on_result`` as it comes back. ``shared`` is put in the
        object store once and every task gets it by reference."""
        if cancelled():
            raise JobCancelled("cancelled")
        if not args:
            return
        ray = connect(self.address)
        remote = _remote(ray, fn)
        extra = () if shared is None else (ray.put(shared),)
        limit = self.max_in_flight or self._default_in_flight(ray)
        pending: dict[Any, int] = {}
        submitted = 0
        try:
            while submitted < len(args) or pending:
                while submitted < len(args) and len(pending) < limit:
                    pending[remote.remote(args[submitted], *extra)] = submitted
                    submitted += 1
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_SECONDS)
                for ref in ready:
                    i = pending.pop(ref)
                    on_result(i, self._get(ray, ref))
                if cancelled():
                    raise JobCancelled("cancelled")
        except BaseException:
            _cancel(ray, pending)
            raise

    @staticmethod
    def _get(ray: ModuleType, ref: Any) -> Any:
        try:
            return ray.get(ref)
        except ray.exceptions.RayError as exc:
            raise failure(ray, exc) from exc
        except ConnectionError as exc:
            raise ExecutorError(f"lost the Ray cluster: {exc}", retryable=True) from exc

    @staticmethod
    def _default_in_flight(ray: ModuleType) -> int:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        return max(1, cpus) * IN_FLIGHT_PER_CPU


def _cancel(ray: ModuleType, pending: dict[Any, int]) -> None:
    """Force-cancel outstanding tasks (their worker processes are killed)."""
    for ref in pending:
        try:
            ray.cancel(ref, force=True)
        except Exception as exc:  # finished meanwhile, or the cluster is gone
            log.debug("could not cancel a Ray task: %s", exc)
    pending.clear()
