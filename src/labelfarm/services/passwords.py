"""Passwords: the policy a new password must meet, and argon2id hashing and checking.

A hash takes tens of milliseconds of CPU and 64 MiB of memory, so it never runs on the event
loop, inside a transaction or under a lock: service functions that hash are marked with
:func:`hashes_password`, and the server lets only a few of them run at a time, the others
waiting on the event loop (not in a parked worker thread) or, past a bound, refused at once
(:class:`labelfarm.web.login_limits.HashGate`). The CLI and tests, which have no event loop,
call the same functions directly.

The hashes themselves run on a few threads of lower CPU priority (``nice`` +10 on Linux; the
argon2 lanes' threads inherit it): when a flood of sign-ins keeps them busy, the annotators'
requests still get the CPU first, and the hashes use what is left.

The policy (:func:`check_policy`): at least :data:`MIN_LENGTH` and at most
:data:`MAX_LENGTH` characters, not one of the 10,000 most common passwords (a list shipped with
the package, ``common_passwords.txt``), and not containing the username.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from importlib.resources import files
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from labelfarm.errors import InvalidInput

F = TypeVar("F", bound=Callable[..., Any])

MIN_LENGTH = 10
MAX_LENGTH = 1024

HASH_NICE = 10  # how much lower the hashing threads' CPU priority is
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# A constant hash to verify against when a user is unknown or has no password, so the
# answer takes as long as for a wrong password and timing does not tell.
_DUMMY_HASH = _hasher.hash("labelfarm-not-a-password")


def _lower_priority() -> None:
    if sys.platform == "linux":  # there, a thread id names one thread
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICE)


# Callers are already few (the server's gate); the pool only lends them low-priority threads.
_pool = ThreadPoolExecutor(16, "labelfarm-hash", initializer=_lower_priority)


def _on_hash_thread(fn: Callable[..., Any], *args: Any) -> Any:
    return _pool.submit(fn, *args).result()


def hashes_password(fn: F) -> F:
    """Mark a service function that hashes or checks a password: the server runs at most a
    few of them at a time (see the module's docstring)."""
    fn.__hashes_password__ = True  # type: ignore[attr-defined]
    return fn


def is_hashing(fn: Callable[..., Any]) -> bool:
    return bool(getattr(fn, "__hashes_password__", False))


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords (lower case); its header says where it is from."""
    text = files("labelfarm.services").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def policy_problems(password: str, username: str | None = None) -> list[dict[str, Any]]:
    """Every rule of the policy the password breaks, as error details (empty: it is fine)."""
    problems: list[dict[str, Any]] = []

    def fail(rule: str, reason: str) -> None:
        problems.append({"field": "password", "rule": rule, "reason": reason})

    if len(password) < MIN_LENGTH:
        fail("min_length", f"shorter than {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        fail("max_length", f"longer than {MAX_LENGTH} characters")
    elif password.lower() in common_passwords():
        fail("common", "one of the 10,000 most common passwords")
    if username and username.lower() in password.lower():
        fail("contains_username", "contains the username")
    return problems


def check_policy(password: str, username: str | None = None) -> None:
    """Raise InvalidInput (422) with one detail per broken rule."""
    problems = policy_problems(password, username)
    if problems:
        raise InvalidInput("the password does not meet the password policy", problems)


def hash_new_password(password: str, username: str | None = None) -> str:
    """The argon2id hash of a password being set, after checking the policy. Every place
    that sets a password comes here."""
    check_policy(password, username)
    hashed: str = _on_hash_thread(_hasher.hash, password)
    return hashed


def verify(stored: str | None, password: str) -> bool:
    """The password against a stored hash; against a constant hash when there is none (an
    unknown user, a token-only user), so that timing does not tell. A password longer than
    any the policy allows is wrong without hashing it."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        _on_hash_thread(_hasher.verify, stored or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    return stored is not None
