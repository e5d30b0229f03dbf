"""Media files: stored content-addressed (SHA-256) on any fsspec filesystem, served only
through short-lived signed URLs bound to a live lease or a role.

Layout: ``<root>/ab/cd/abcd…`` for SHA-256 ``abcd…``. A signed URL names the file, the user
it was issued to, what grants it (``item``: the user's lease on that item; ``workspace``:
the user's role there) and its expiry; the signature is an HMAC over all of them with the
instance's secret key, so it cannot be widened or extended by the holder. Each request
checks the grant is still live (:func:`media_access`, one indexed lookup): a submitted,
skipped or expired lease, a removed member or a deactivated user ends the URL at once.
How a file may be served (inline or as an attachment) was decided when it was stored
(:mod:`labelfarm.services.media_check`).
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
    def _sig(self, sha: str, user_id: int, grant: str, expires: int) -> str:
        msg = f"{sha}:{user_id}:{grant}:{expires}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()[:32]

    def sign(
        self,
        sha: str,
        user_id: int,
        expires: float,
        *,
        item: int | None = None,
        workspace: int | None = None,
    ) -> str:
        """A URL for ``sha`` granted by the user's live lease on ``item`` or by the user's
        role in ``workspace`` (exactly one of the two)."""
        name, value = _grant(item, workspace)
        exp = int(expires)
        sig = self._sig(sha, user_id, f"{name}={value}", exp)
        query = f"user={user_id}&{name}={value}&expires={exp}&signature={sig}"
        return f"{self.origin}/media/{sha}?{query}"

    def check(
        self,
        sha: str,
        user_id: int,
        expires: int,
        sig: str,
        now: float,
        *,
        item: int | None = None,
        workspace: int | None = None,
    ) -> bool:
        if expires < now or (item is None) == (workspace is None) or not sig.isascii():
            return False  # compare_digest compares ASCII text only
        name, value = _grant(item, workspace)
        return hmac.compare_digest(self._sig(sha, user_id, f"{name}={value}", expires), sig)


def _grant(item: int | None, workspace: int | None) -> tuple[str, int]:
    if item is not None and workspace is None:
        return "item", item
    if workspace is not None and item is None:
        return "workspace", workspace
    raise ValueError("a media URL is granted by an item's lease or a workspace role, one of them")


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


_FILE = "SELECT m.mime, m.inline, m.checked_at IS NOT NULL, "
# the user's lease on the item is live, the user active and still a member of its workspace
BY_LEASE = Sql(
    _FILE + "EXISTS (SELECT 1 FROM assignments a JOIN users u ON u.id = a.user_id "
    "JOIN projects p ON p.id = a.project_id "
    "WHERE a.item_id = :item AND a.user_id = :u AND a.state = 'leased' AND a.expires_at > :now "
    "AND u.is_active AND (u.is_superuser OR EXISTS (SELECT 1 FROM memberships ms "
    "WHERE ms.workspace_id = p.workspace_id AND ms.user_id = a.user_id))) "
    "FROM media m WHERE m.sha256 = :s",
    row=MediaAccess,
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
def media_access(
    tx: Tx, sha: str, user_id: int, now: float, *, item: int | None, workspace: int | None
) -> MediaAccess | None:
    """How ``sha`` may be served to a URL granted by ``item`` or ``workspace``; None when it
    is not stored. One statement, by primary and unique keys."""
    if item is not None:
        return tx.one(BY_LEASE, {"s": sha, "u": user_id, "item": item, "now": now})
    return tx.one(BY_ROLE, {"s": sha, "u": user_id, "ws": workspace})
