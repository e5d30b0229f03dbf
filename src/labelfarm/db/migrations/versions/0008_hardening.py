"""Hardening: media checked before it is served inline, a keyed audit chain, caps on live
leases and checkout hours, token expiry.

Each part has its own pair of functions below.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _upgrade_media()
    _upgrade_audit()
    _upgrade_leases_and_tokens()


def downgrade() -> None:
    _downgrade_leases_and_tokens()
    _downgrade_audit()
    _downgrade_media()


# -- media: what was checked, and how it may be served ------------------------------------
def _upgrade_media() -> None:
    # every file stored so far is unchecked: served as an attachment until
    # `labelfarm media check` (or the server at start) has decoded it
    with op.batch_alter_table("media") as batch:
        batch.add_column(
            sa.Column("inline", sa.Boolean(), nullable=False, server_default=sa.text("false"))
        )
        batch.add_column(sa.Column("checked_at", sa.Float(), nullable=True))
    op.create_index(
        "ix_media_unchecked",
        "media",
        ["sha256"],
        sqlite_where=sa.text("checked_at IS NULL"),
        postgresql_where=sa.text("checked_at IS NULL"),
    )


def _downgrade_media() -> None:
    op.drop_index("ix_media_unchecked", table_name="media")
    with op.batch_alter_table("media") as batch:
        batch.drop_column("checked_at")
        batch.drop_column("inline")


# -- audit: keyed chain ---------------------------------------------------------------------
# Rows get a hash scheme: 0 (sha256, every row so far) or 1 (hmac-sha256 with the audit key,
# every row from now on). Existing rows are sealed by one keyed row appended on top of them
# here, so that from this revision on a chain without a keyed row after its unkeyed rows is
# one rewritten without the key (labelfarm.services.audit_chain).
def _upgrade_audit() -> None:
    op.add_column(
        "audit_log",
        sa.Column("scheme", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
    )
    op.create_table(
        "audit_anchors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.Column("anchor", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_anchors")),
    )
    _seal_unkeyed_audit_rows()


def _seal_unkeyed_audit_rows() -> None:
    """Append a keyed row on top of the rows hashed without a key (if there are any)."""
    import hashlib
    import hmac
    import time

    import orjson

    bind = op.get_bind()
    last = bind.execute(sa.text("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1")).first()
    if last is None:
        return
    key = bind.get_execution_options().get("labelfarm_audit_key")
    if not key:
        raise RuntimeError(
            "the audit log has rows to seal with the audit key, and no key was given: "
            "upgrade with `labelfarm migrate` (LABELFARM_AUDIT_KEY or DATA_DIR/audit.key)"
        )
    head = bind.execute(sa.text("SELECT last_id, hash FROM audit_head WHERE id = 1")).first()
    # on top of the head, so that rows deleted before the upgrade stay visible as missing
    prev_id, prev_hash = (head[0], head[1]) if head is not None else (last[0], last[1])
    n_rows = bind.execute(sa.text("SELECT COUNT(*) FROM audit_log")).scalar_one()
    row = {
        "id": prev_id + 1,
        "ts": time.time(),
        "workspace_id": None,
        "actor_id": None,
        "action": "audit.keyed",
        "target": "audit_log",
        "details": orjson.dumps({"unkeyed_rows": n_rows, "unkeyed_head": prev_hash}).decode(),
        "prev_hash": prev_hash,
    }
    message = orjson.dumps(
        [row["id"], repr(float(row["ts"])), None, None, row["action"], row["target"],
         row["details"], row["prev_hash"]]
    )  # fmt: skip
    row["hash"] = hmac.new(key, message, hashlib.sha256).hexdigest()
    bind.execute(
        sa.text(
            "INSERT INTO audit_log (id, ts, workspace_id, actor_id, action, target, details, "
            "prev_hash, hash, scheme) VALUES (:id, :ts, :workspace_id, :actor_id, :action, "
            ":target, :details, :prev_hash, :hash, 1)"
        ),
        row,
    )
    params = {"last_id": row["id"], "hash": row["hash"]}
    if head is None:
        bind.execute(
            sa.text("INSERT INTO audit_head (id, last_id, hash) VALUES (1, :last_id, :hash)"),
            params,
        )
    else:
        bind.execute(
            sa.text("UPDATE audit_head SET last_id = :last_id, hash = :hash WHERE id = 1"), params
        )


def _downgrade_audit() -> None:
    """Rows keyed since the upgrade stay; the old code cannot check them (it reports them)."""
    op.drop_table("audit_anchors")
    with op.batch_alter_table("audit_log", recreate="never") as batch:
        batch.drop_column("scheme")


# -- live-lease caps, checkout hours, token expiry -------------------------------------------
def _upgrade_leases_and_tokens() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(
            sa.Column("max_live_leases", sa.Integer(), server_default="50", nullable=False)
        )
        batch.add_column(
            sa.Column("max_checkout_hours", sa.Float(), server_default="24", nullable=False)
        )
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("expires_at", sa.Float(), nullable=True))
    op.create_table(
        "lease_gates",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "user_id", name="pk_lease_gates"),
    )


def _downgrade_leases_and_tokens() -> None:
    op.drop_table("lease_gates")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("expires_at")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("max_checkout_hours")
        batch.drop_column("max_live_leases")
