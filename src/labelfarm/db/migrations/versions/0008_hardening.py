"""Hardening: media checked before it is served inline, a keyed audit chain, caps on live
leases and checkout hours, token expiry.

Each part has its own pair of functions below.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

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
    pass


def _downgrade_media() -> None:
    pass


# -- audit: keyed chain ---------------------------------------------------------------------
def _upgrade_audit() -> None:
    pass


def _downgrade_audit() -> None:
    pass


# -- live-lease caps, checkout hours, token expiry -------------------------------------------
def _upgrade_leases_and_tokens() -> None:
    pass


def _downgrade_leases_and_tokens() -> None:
    pass
