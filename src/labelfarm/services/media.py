"""Media files: stored content-addressed (SHA-256) on any fsspec filesystem, served only
through short-lived signed URLs bound to a live lease or a role.

Layout: ``<root>/ab/cd/abcd…`` for SHA-256 ``abcd…``. A signed URL names the user it was
issued to, what grants it and its expiry; the signature is an HMAC over all of them with the
instance's secret key, so it cannot be widened or extended by the holder. There are two:

* by role (managers, reviewers, clients): ``/media/{sha}?workspace=…``, the user's role in
  the workspace;
* by lease (annotators): ``/media/tasks/{project}/{handle}``, the user's live lease on the
  task (:mod:`labelfarm.services.tasks.handles`). It names neither the file nor the item,
  so an annotator's URLs carry nothing common to all annotators (gold stays blind).

Each request checks the grant is still live (:func:`media_access`, :func:`task_media`: one
indexed lookup): a submitted, skipped or expired lease, a removed member or a deactivated
user ends the URL at once. How a file may be served (inline or as an attachment) was
decided when it was stored (:mod:`labelfarm.services.media_check`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from typing import IO, NamedTuple

import fsspec

from labelfarm.db.tx import CoreTx, Sql, Tx, transaction
from labelfarm.services.media_check import Verdict

_CHUNK = 1 << 20


class MediaStore:
    def __init__(self, root: str, secret: bytes, origin: str = "") -> None:
        """``origin`` (``https://media.example.org``): signed URLs are absolute, on that
        origin; empty: they are paths on the app's own origin."""
        self.fs, self.root = fsspec.core.url_to_fs(root)
        self.fs.makedirs(self.root, exist_ok=True)
        self._secret = secret
        self.origin = origin.rstrip("/")
        self.is_local = self.fs.protocol in ("file", ("file", "local"))

    def path(self, sha: str) -> str:
        return f"{self.root}/{sha[:2]}/{sha[2:4]}/{sha}"

    def exists(self, sha: str) -> bool:
        return bool(self.fs.exists(self.path(sha)))

    def put_file(self, source: str | Path) -> tuple[str, int]:
        """Store a local file; returns (sha256, size). Storing the same bytes twice is free."""
        digest = hashlib.sha256()
        size = 0
        with open(source, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        sha = digest.hexdigest()
        dest = self.path(sha)
        if not self.fs.exists(dest):
            self.fs.makedirs(os.path.dirname(dest), exist_ok=True)
            tmp = f"{dest}.{os.getpid()}.part"
            self.fs.put_file(str(source), tmp)
            self.fs.mv(tmp, dest)
        return sha, size

    def open(self, sha: str) -> IO[bytes]:
        handle: IO[bytes] = self.fs.open(self.path(sha), "rb")
        return handle

    def local_path(self, sha: str) -> str | None:
        return self.path(sha) if self.is_local else None

    # -- signed URLs -------------------------------------------------------------------
    def _sig(self, name: str, user_id: int, grant: str, expires: int) -> str:
        msg = f"{name}:{user_id}:{grant}:{expires}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()[:32]

    def sign(self, sha: str, user_id: int, expires: float, *, workspace: int) -> str:
        """A URL for ``sha`` granted by the user's role in ``workspace`` (managers,
        reviewers, clients: they see content hashes and item ids)."""
        exp = int(expires)
        sig = self._sig(sha, user_id, f"workspace={workspace}", exp)
        query = f"user={user_id}&workspace={workspace}&expires={exp}&signature={sig}"
        return f"{self.origin}/media/{sha}?{query}"

    def sign_task(self, project_id: int, handle: str, user_id: int, expires: float) -> str:
        """A URL for the media of the annotator's task ``handle``, granted by their live
        lease on it: it names neither the item nor the file (the server resolves both)."""
        exp = int(expires)
        sig = self._sig(handle, user_id, f"project={project_id}", exp)
        query = f"user={user_id}&expires={exp}&signature={sig}"
        return f"{self.origin}/media/tasks/{project_id}/{handle}?{query}"

    def check(
        self,
        name: str,
        user_id: int,
        expires: int,
        sig: str,
        now: float,
        *,
        workspace: int | None = None,
        project: int | None = None,
    ) -> bool:
        """Whether ``sig`` is the signature of a URL for ``name`` (a file's sha, with
        ``workspace``; a task handle, with ``project``) and has not expired."""
        if expires < now or (project is None) == (workspace is None) or not sig.isascii():
            return False  # compare_digest compares ASCII text only
        grant = f"workspace={workspace}" if workspace is not None else f"project={project}"
        return hmac.compare_digest(self._sig(name, user_id, grant, expires), sig)


REGISTER = Sql(
    "INSERT INTO media (sha256, size, mime, inline, checked_at, created_at) "
    "VALUES (:s, :z, :m, :i, :now, :now) ON CONFLICT (sha256) DO UPDATE SET "
    "mime = excluded.mime, inline = excluded.inline, checked_at = excluded.checked_at "
    "WHERE media.checked_at IS NULL"
)


def register_media(tx: CoreTx, stored: list[tuple[str, int, Verdict]], now: float) -> None:
    """Record stored files (sha, size, verdict) with how they are served (idempotent; a file
    stored before checks existed takes its verdict now)."""
    tx.many(
        REGISTER,
        [{"s": s, "z": z, "m": v.mime, "i": v.inline, "now": now} for s, z, v in stored],
    )


class MediaAccess(NamedTuple):
    """A stored file as a request may have it: its type, whether it was checked and may be
    shown inline, and whether the URL's grant is still live."""

    mime: str
    inline: bool
    checked: bool
    allowed: bool


class TaskMedia(NamedTuple):
    """The file of an annotator's task, and how a request may have it."""

    sha: str
    access: MediaAccess


_FILE = "SELECT m.mime, m.inline, m.checked_at IS NOT NULL, "
# the user's lease on the item is live, the user active and still a member of its workspace
BY_LEASE = Sql(
    "SELECT m.sha256, m.mime, m.inline, m.checked_at IS NOT NULL, "
    "EXISTS (SELECT 1 FROM assignments a JOIN users u ON u.id = a.user_id "
    "JOIN projects p ON p.id = a.project_id "
    "WHERE a.item_id = i.id AND a.user_id = :u AND a.state = 'leased' AND a.expires_at > :now "
    "AND u.is_active AND (u.is_superuser OR EXISTS (SELECT 1 FROM memberships ms "
    "WHERE ms.workspace_id = p.workspace_id AND ms.user_id = a.user_id))) "
    "FROM items i JOIN media m ON m.sha256 = i.media_sha256 "
    "WHERE i.id = :item AND i.project_id = :p"
)
# the user is active and a manager, reviewer, client or admin of the workspace (or superuser)
BY_ROLE = Sql(
    _FILE + "EXISTS (SELECT 1 FROM users u WHERE u.id = :u AND u.is_active AND (u.is_superuser "
    "OR EXISTS (SELECT 1 FROM memberships ms WHERE ms.workspace_id = :ws AND ms.user_id = u.id "
    "AND ms.role IN ('admin', 'manager', 'reviewer', 'client')))) "
    "FROM media m WHERE m.sha256 = :s",
    row=MediaAccess,
)


@transaction("lookup")
def media_access(tx: Tx, sha: str, user_id: int, *, workspace: int) -> MediaAccess | None:
    """How ``sha`` may be served to a URL granted by a role in ``workspace``; None when it
    is not stored. One statement, by primary and unique keys."""
    return tx.one(BY_ROLE, {"s": sha, "u": user_id, "ws": workspace})


@transaction("lookup")
def task_media(tx: Tx, project_id: int, item_id: int, user_id: int, now: float) -> TaskMedia | None:
    """The file of an item of the project and how it may be served to the user (granted by
    their live lease on it); None when the item has no stored file. One statement."""
    row = tx.one(BY_LEASE, {"p": project_id, "item": item_id, "u": user_id, "now": now})
    if row is None:
        return None
    sha, *access = row
    return TaskMedia(sha, MediaAccess(*access))
