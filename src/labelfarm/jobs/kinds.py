"""The registry of job kinds: what a job of each kind runs.

A kind is a function of a :class:`labelfarm.jobs.context.JobContext` returning the job's
result (a JSON-able dict, or None), registered by name with :func:`job_kind` in one of the
modules of :data:`KIND_MODULES`, which :func:`load_kinds` imports. ``heavy`` kinds do model
work through the context's executor (on a Ray cluster when one is configured).
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from labelfarm.errors import InvalidInput

if TYPE_CHECKING:
    from labelfarm.jobs.context import JobContext

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("labelfarm.jobs")

KIND_MODULES = (
    "labelfarm.jobs.refit",
    "labelfarm.jobs.model_jobs",
    "labelfarm.jobs.score_jobs",
    "labelfarm.jobs.data_jobs",
    "labelfarm.jobs.backend_jobs",
    "labelfarm.jobs.asr_jobs",
    "labelfarm.jobs.label_error_jobs",
    "labelfarm.jobs.auto_accept_jobs",
)


@dataclass(frozen=True)
class JobKind:
    name: str
    run: Callable[[JobContext], dict[str, Any] | None]
    heavy: bool = False
    title: str = ""


_kinds: dict[str, JobKind] = {}
_broken: dict[str, str] = {}  # module -> why it failed to import
_loaded = False
_load_lock = threading.Lock()


def job_kind(name: str, *, heavy: bool = False, title: str = "") -> Callable[[F], F]:
    """Register the decorated function as the job kind ``name``."""

    def register(fn: F) -> F:
        known = _kinds.get(name)
        if known is not None and known.run is not fn:
            qualname = getattr(known.run, "__qualname__", repr(known.run))
            raise ValueError(f"job kind {name!r} is already registered ({qualname})")
        _kinds[name] = JobKind(name, fn, heavy=heavy, title=title or name)
        return fn

    return register


def load_kinds() -> None:
    """Import every module of :data:`KIND_MODULES` (once), registering their kinds. A module
    that fails to import is logged and its kinds stay unknown (saying why): the worker still
    runs every other kind."""
    global _loaded
    if _loaded:
        return
    with _load_lock:
        if not _loaded:
            for module in KIND_MODULES:
                try:
                    importlib.import_module(module)
                except Exception as exc:
                    log.exception("job kinds of %s failed to load", module)
                    _broken[module] = f"{type(exc).__name__}: {exc}"
            _loaded = True


def get_kind(name: str) -> JobKind:
    """The kind ``name``; an unknown name is a 422 listing the valid ones."""
    load_kinds()
    kind = _kinds.get(name)
    if kind is None:
        valid = ", ".join(kind_names())
        broken = "".join(f"; {m} failed to load ({why})" for m, why in _broken.items())
        raise InvalidInput(
            f"unknown job kind {name!r}; valid kinds: {valid}{broken}",
            [{"field": "kind", "valid": list(kind_names())}],
        )
    return kind


def kind_names() -> tuple[str, ...]:
    load_kinds()
    return tuple(sorted(_kinds))
