"""External model servers attached to a project: Label Studio ML backends, unchanged.

A manager attaches a server by its address (``http`` or ``https``), a title, and optional
basic-auth credentials; the password is stored encrypted (AES-GCM under a key derived from
the instance's secret key, the project as associated data), never answered by the API, and
decrypted only to call the server (:func:`connection`). Attaching and detaching are audited.
The calls themselves are :mod:`labelfarm.services.ml_backend_client`'s; the jobs that make
them are in :mod:`labelfarm.jobs.backend_jobs`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select

from labelfarm.db.tables import ml_backends, projects
from labelfarm.db.tx import CoreTx, transaction
from labelfarm.errors import InvalidInput, NotFound
from labelfarm.services import audit

_PURPOSE = b"labelfarm ml backend secret v1"
MAX_URL = 2000
MAX_TITLE = 200
PUBLIC = ("id", "project_id", "title", "url", "auth_user", "model_version", "created_by")


@dataclass(frozen=True)
class Backend:
    """What a call to a model server needs: where, as whom, and what it said last."""

    id: int
    project_id: int
    title: str
    url: str
    auth: tuple[str, str] | None
    model_version: str | None
    created_by: int | None

    @property
    def name(self) -> str:
        """How errors and predictions name it: its title and address."""
        return f"{self.title} ({self.url})" if self.title != self.url else self.url


def _aead(secret: bytes) -> AESGCM:
    # a key of its own, so a stored password reveals nothing about keys used elsewhere
    return AESGCM(hmac.new(secret, _PURPOSE, hashlib.sha256).digest())


def seal(secret: bytes, project_id: int, plain: str) -> str:
    """``plain`` encrypted for the project's backends (base64 of nonce and ciphertext)."""
    nonce = os.urandom(12)
    sealed = _aead(secret).encrypt(nonce, plain.encode(), f"project={project_id}".encode())
    return base64.b64encode(nonce + sealed).decode()


def unseal(secret: bytes, project_id: int, stored: str) -> str:
    """The password :func:`seal` stored; InvalidInput when the secret key changed since."""
    try:
        raw = base64.b64decode(stored)
        plain = _aead(secret).decrypt(raw[:12], raw[12:], f"project={project_id}".encode())
    except (ValueError, InvalidTag):
        raise InvalidInput(
            "the model server's password cannot be read (the instance's secret key changed "
            "since it was stored): attach the server again",
            [{"field": "auth_secret", "reason": "cannot be decrypted"}],
        ) from None
    return plain.decode()


def check_url(url: str) -> str:
    """``url`` stripped of a trailing slash if it is an http(s) address of a server;
    InvalidInput saying what is wrong with it otherwise."""
    url = url.strip()

    def bad(reason: str) -> InvalidInput:
        return InvalidInput(f"url {url!r}: {reason}", [{"field": "url", "reason": reason}])

    if not url or len(url) > MAX_URL:
        raise bad(f"give the server's address, at most {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise bad(f"not an address ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise bad(f"the scheme must be http or https, not {parts.scheme or 'missing'!r}")
    if not parts.hostname:
        raise bad("no host name (e.g. http://model-server:9090)")
    if parts.username is not None or parts.password is not None:
        raise bad("credentials in the address: give them as auth_user and auth_secret")
    if parts.query or parts.fragment:
        raise bad("a query or fragment: give the server's base address only")
    if port == 0:
        raise bad("port 0")
    return url.rstrip("/")


def _public(row: Any) -> dict[str, Any]:
    out = {k: row[k] for k in PUBLIC}
    out["has_secret"] = row["auth_secret"] is not None
    out["created_at"] = row["created_at"]
    return out


def _workspace_of(tx: CoreTx, project_id: int) -> int:
    ws = tx.execute(select(projects.c.workspace_id).where(projects.c.id == project_id)).scalar()
    if ws is None:
        raise NotFound(f"no project {project_id}")
    return int(ws)


def _row(tx: CoreTx, project_id: int, backend_id: int) -> Any:
    row = (
        tx.execute(
            select(ml_backends).where(
                ml_backends.c.id == backend_id, ml_backends.c.project_id == project_id
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no such model server {backend_id} in project {project_id}")
    return row


@transaction("write")
def attach(
    tx: CoreTx,
    *,
    project_id: int,
    url: str,
    secret_key: bytes,
    now: float,
    actor_id: int | None,
    title: str | None = None,
    auth_user: str | None = None,
    auth_secret: str | None = None,
) -> dict[str, Any]:
    """Attach a model server to a project; audited (the password is not recorded)."""
    url = check_url(url)
    title = (title or "").strip() or url
    if len(title) > MAX_TITLE:
        raise InvalidInput(
            f"title: at most {MAX_TITLE} characters",
            [{"field": "title", "reason": f"longer than {MAX_TITLE} characters"}],
        )
    if auth_secret and not auth_user:
        raise InvalidInput(
            "auth_secret without auth_user: basic auth needs both",
            [{"field": "auth_user", "reason": "missing"}],
        )
    workspace_id = _workspace_of(tx, project_id)
    sealed = seal(secret_key, project_id, auth_secret) if auth_user and auth_secret else None
    backend_id = tx.execute(
        ml_backends.insert()
        .values(
            project_id=project_id,
            title=title,
            url=url,
            auth_user=auth_user or None,
            auth_secret=sealed,
            created_by=actor_id,
            created_at=now,
        )
        .returning(ml_backends.c.id)
    ).scalar_one()
    audit.record(
        tx,
        action="ml_backend.attach",
        target=f"project:{project_id}",
        now=now,
        workspace_id=workspace_id,
        actor_id=actor_id,
        details={"backend": backend_id, "url": url, "title": title, "auth_user": auth_user},
    )
    return _public(_row(tx, project_id, backend_id))


@transaction("read")
def list_backends(tx: CoreTx, project_id: int) -> list[dict[str, Any]]:
    """A project's model servers, oldest first (no passwords)."""
    rows = tx.execute(
        select(ml_backends).where(ml_backends.c.project_id == project_id).order_by(ml_backends.c.id)
    ).mappings()
    return [_public(r) for r in rows]


@transaction("read")
def get_backend(tx: CoreTx, project_id: int, backend_id: int) -> dict[str, Any]:
    """One of a project's model servers (no password); NotFound if it is not the project's."""
    return _public(_row(tx, project_id, backend_id))


@transaction("read")
def connection(tx: CoreTx, project_id: int, backend_id: int, secret_key: bytes) -> Backend:
    """What a call to the server needs, its password decrypted."""
    row = _row(tx, project_id, backend_id)
    auth = None
    if row["auth_user"]:
        secret = row["auth_secret"]
        auth = (row["auth_user"], unseal(secret_key, project_id, secret) if secret else "")
    return Backend(
        id=row["id"],
        project_id=row["project_id"],
        title=row["title"],
        url=row["url"],
        auth=auth,
        model_version=row["model_version"],
        created_by=row["created_by"],
    )


@transaction("write")
def set_model_version(tx: CoreTx, project_id: int, backend_id: int, version: str | None) -> None:
    """Remember the model version the server last answered (its /setup)."""
    _row(tx, project_id, backend_id)
    tx.execute(
        ml_backends.update()
        .where(ml_backends.c.id == backend_id)
        .values(model_version=(version or None) and str(version)[:200])
    )


@transaction("write")
def detach(
    tx: CoreTx, *, project_id: int, backend_id: int, now: float, actor_id: int | None
) -> None:
    """Detach a model server (its predictions stay); audited."""
    row = _row(tx, project_id, backend_id)
    tx.execute(ml_backends.delete().where(ml_backends.c.id == backend_id))
    audit.record(
        tx,
        action="ml_backend.detach",
        target=f"project:{project_id}",
        now=now,
        workspace_id=_workspace_of(tx, project_id),
        actor_id=actor_id,
        details={"backend": backend_id, "url": row["url"], "title": row["title"]},
    )
