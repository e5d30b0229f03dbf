"""One typed settings object, read from ``LABELFARM_*`` environment variables.

Every setting is documented here and in ``docs/settings.md``; a test keeps the two in step.
"""

from __future__ import annotations

import json
import os
import secrets
import warnings
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from labelfarm.settings_jobs import JobSettings


class Settings(JobSettings):
    """labelfarm's configuration. Each field is read from ``LABELFARM_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="LABELFARM_", extra="ignore")

    data_dir: Path = Field(
        default=Path("labelfarm-data"),
        description="Folder for the embedded SQLite database, media and exports.",
    )
    database_url: str = Field(
        default="",
        description=(
            "SQLAlchemy URL. Empty means SQLite at DATA_DIR/labelfarm.db; "
            "PostgreSQL as postgresql+psycopg://user@host:port/db."
        ),
    )
    media_root: str = Field(
        default="",
        description="Where media files are stored, content-addressed. Empty means DATA_DIR/media.",
    )
    secret_key: str = Field(
        default="",
        description=(
            "Key that signs media URLs and sessions and keys annotators' task handles. Empty "
            "means a key generated once and kept in DATA_DIR/secret.key."
        ),
    )
    host: str = Field(default="127.0.0.1", description="Address `labelfarm serve` binds to.")
    port: int = Field(default=8080, description="Port `labelfarm serve` listens on.")
    workers: int = Field(
        default=0,
        description=(
            "Server processes of `labelfarm serve` (0: one on SQLite, one per two cores on "
            "PostgreSQL)."
        ),
    )
    hot_connections: int = Field(
        default=16,
        ge=1,
        description=(
            "PostgreSQL connections each server process keeps for next, submit and skip; "
            "more requests than this wait their turn without blocking the process."
        ),
    )
    session_hours: float = Field(default=12.0, description="Lifetime of a browser session.")
    secure_cookies: bool = Field(
        default=False, description="Mark session cookies Secure (set when served over HTTPS)."
    )
    media_url_seconds: int = Field(
        default=900,
        description=(
            "Upper bound on the lifetime of a signed media URL given by a role (review "
            "pages); an annotator's URL lives as long as its lease and ends with it."
        ),
    )
    media_origin: str = Field(
        default="",
        pattern=r"^(https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?)?$",
        description=(
            "Origin (scheme://host[:port]) that serves media, e.g. https://media.example.org, "
            "so uploaded bytes never share the app's origin; empty: the app's own origin."
        ),
    )
    auth_cache_seconds: float = Field(
        default=10.0,
        description="How long a token or membership lookup is cached in a server process.",
    )
    import_batch_rows: int = Field(
        default=5000, description="Rows written per transaction during an import."
    )
    max_next_tasks: int = Field(default=50, description="Most tasks one `next` call may lease.")
    refit_seconds: float = Field(
        default=300.0,
        description=(
            "How often a job worker refits the annotator models of adaptive-overlap projects "
            "that have new annotations and measures speech-recognition pre-fill against new "
            "transcripts, as a `refit` job (0: never; managers can still refit by hand)."
        ),
    )
    login_limits: bool = Field(
        default=True,
        description=(
            "Limit failed sign-ins per client address and per (account, address) pair, "
            "with a growing wait (429 and Retry-After)."
        ),
    )
    login_free_failures_per_address: int = Field(
        default=30,
        ge=1,
        description="Failed sign-ins from one address before it has to wait.",
    )
    login_free_failures_per_account: int = Field(
        default=5,
        ge=1,
        description="Failed sign-ins on one account from one address before that pair waits.",
    )
    login_backoff_seconds: float = Field(
        default=1.0,
        gt=0,
        description="The first wait after the free failures; each further failure doubles it.",
    )
    login_backoff_max_seconds: float = Field(
        default=900.0,
        gt=0,
        description="The longest wait between failed sign-ins.",
    )
    login_forget_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="Quiet time after which an address's or a pair's failures are forgotten.",
    )
    password_hashes_in_flight: int = Field(
        default=2,
        ge=1,
        description="Password hashes (sign-ins, new users) a server process runs at once.",
    )
    password_hash_queue: int = Field(
        default=64,
        ge=0,
        description="Sign-ins that may wait for a hash slot; more are refused with 503.",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Addresses or CIDR blocks of reverse proxies whose X-Forwarded-For is believed "
            "(comma-separated); empty: the direct peer is the client."
        ),
    )
    audit_tally_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Events audited in aggregate (failed sign-ins) are written once per this span.",
    )
    audit_key: str = Field(
        default="",
        description=(
            "Key of the audit log's hash chain (HMAC-SHA256), kept outside the database; "
            "every server of an instance needs the same one. Empty means a key generated once "
            "and kept in DATA_DIR/audit.key."
        ),
    )
    operator: str = Field(
        default="",
        description=(
            "Who runs `labelfarm` commands, as recorded in the audit log (`--as` overrides "
            "it); empty means the login name of the shell's user."
        ),
    )
    sqlite_synchronous: Literal["NORMAL", "FULL"] = Field(
        default="NORMAL",
        description=(
            "SQLite's durability (PRAGMA synchronous, in WAL mode): NORMAL may lose the last "
            "transactions on a power failure or OS crash, never corrupts; FULL loses none, at "
            "the cost of a disk flush per commit."
        ),
    )

    max_upload_bytes: int = Field(
        default=32 << 30,
        ge=1,
        description=(
            "Largest upload: the request body of an import (a file or an archive). Refused "
            "with 413 as soon as this many bytes have arrived."
        ),
    )
    max_request_bytes: int = Field(
        default=4 << 20,
        ge=1024,
        description=(
            "Largest body of any other request (JSON API calls, forms). Refused with 413 "
            "as soon as this many bytes have arrived."
        ),
    )
    max_item_bytes: int = Field(
        default=1 << 20,
        ge=1024,
        description=(
            "Largest item: its line, array element or row in an imported file, and its "
            "data as JSON."
        ),
    )
    max_columns: int = Field(
        default=1000, ge=1, description="Most columns of an imported CSV or TSV file."
    )
    max_archive_bytes: int = Field(
        default=50 << 30,
        ge=1,
        description="Largest total size of an imported zip archive's files, unpacked.",
    )
    max_archive_ratio: int = Field(
        default=100,
        ge=1,
        description=(
            "Largest expansion of an imported zip archive: bytes unpacked per archive byte, "
            "over all its files together, once past 16 MiB unpacked."
        ),
    )

    audio_url_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Host names the server may fetch media from when a JSON Lines item names its "
            "media by an http(s) URL (comma-separated); empty: media URLs are refused."
        ),
    )
    audio_url_max_bytes: int = Field(
        default=2 << 30,
        ge=1,
        description="Largest file the server fetches from a media URL of an import.",
    )

    @field_validator("trusted_proxies", "audio_url_hosts", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'labelfarm.db').resolve()}"

    @cached_property
    def resolved_media_root(self) -> str:
        return self.media_root or str((self.data_dir / "media").resolve())

    @cached_property
    def resolved_model_root(self) -> str:
        return self.model_root or str((self.data_dir / "models").resolve())

    @cached_property
    def resolved_secret_key(self) -> bytes:
        if self.secret_key:
            return self.secret_key.encode()
        path = self.data_dir / "secret.key"
        if path.exists():
            return path.read_text().strip().encode()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        if self.host not in ("127.0.0.1", "localhost", "::1"):
            warnings.warn(
                "LABELFARM_SECRET_KEY is not set: a generated key in the data folder is used; "
                "set one explicitly when several servers share a database.",
                stacklevel=2,
            )
        return key.encode()

    @cached_property
    def resolved_audit_key(self) -> bytes:
        """The audit chain's key: the setting, or DATA_DIR/audit.key (made once, mode 0600)."""
        if self.audit_key:
            return self.audit_key.encode()
        path = self.data_dir / "audit.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            try:  # created with its mode: never readable by others, not even briefly
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process made it meanwhile
                return path.read_text().strip().encode()
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48))
            if self.host not in ("127.0.0.1", "localhost", "::1"):
                warnings.warn(
                    "LABELFARM_AUDIT_KEY is not set: a generated key in the data folder is "
                    "used; every server of an instance must use the same key.",
                    stacklevel=2,
                )
        return path.read_text().strip().encode()
