"""Media files: stored content-addressed (SHA-256) on any fsspec filesystem, served only
through short-lived signed URLs.

Layout: ``<root>/ab/cd/abcd…`` for SHA-256 ``abcd…``. A signed URL names the file, the user
it was issued to, and its expiry; the signature is an HMAC over all three with the
instance's secret key, so it cannot be widened or extended by the holder.
"""

from __future__ import annotations

import hashlib
import hmac
import mimetypes
import os
from pathlib import Path
from typing import IO

import fsspec
from sqlalchemy import text

from labelfarm.db.tx import CoreTx, Sql, Tx, transaction

_CHUNK = 1 << 20


class MediaStore:
    def __init__(self, root: str, secret: bytes) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(root)
        self.fs.makedirs(self.root, exist_ok=True)
        self._secret = secret
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
    def _sig(self, sha: str, user_id: int, expires: int) -> str:
        msg = f"{sha}:{user_id}:{expires}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()[:32]

    def sign(self, sha: str, user_id: int, expires: float) -> str:
        exp = int(expires)
        return f"/media/{sha}?user={user_id}&expires={exp}&signature={self._sig(sha, user_id, exp)}"

    def check(self, sha: str, user_id: int, expires: int, sig: str, now: float) -> bool:
        if expires < now:
            return False
        return hmac.compare_digest(self._sig(sha, user_id, expires), sig)


def register_media(tx: CoreTx, sha: str, size: int, name: str, now: float) -> None:
    """Record a stored file (idempotent)."""
    mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
    tx.execute(
        text(
            "INSERT INTO media (sha256, size, mime, created_at) VALUES (:s, :z, :m, :now) "
            "ON CONFLICT (sha256) DO NOTHING"
        ),
        {"s": sha, "z": size, "m": mime, "now": now},
    )


MIME = Sql("SELECT mime FROM media WHERE sha256 = :s")


@transaction("lookup")
def media_mime(tx: Tx, sha: str) -> str | None:
    """The media type of a stored file, or None."""
    row = tx.one(MIME, {"s": sha})
    return None if row is None else str(row[0])
