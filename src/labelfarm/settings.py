"""One typed settings object, read from ``LABELFARM_*`` environment variables.

Every setting is documented here and in ``docs/settings.md``; a test keeps the two in step.
"""

from __future__ import annotations

import secrets
import warnings
from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
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
            "Key that signs media URLs and sessions. Empty means a key generated once and "
            "kept in DATA_DIR/secret.key."
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
        default=900, description="Upper bound on the lifetime of a signed media URL."
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
            "How often a server refits the annotator models of adaptive-overlap projects "
            "that have new annotations (0: never; managers can still refit by hand)."
        ),
    )

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'labelfarm.db').resolve()}"

    @cached_property
    def resolved_media_root(self) -> str:
        return self.media_root or str((self.data_dir / "media").resolve())

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
