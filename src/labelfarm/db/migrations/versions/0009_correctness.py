"""Correctness: blind gold behind per-lease handles, training and control gold, standing
history, stored image sizes, what imports keep.

Each part has its own pair of functions below.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401  (used by the parts below)
from alembic import op  # noqa: F401

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _upgrade_handles()
    _upgrade_gold_and_standing()
    _upgrade_media_sizes()
    _upgrade_imports()


def downgrade() -> None:
    _downgrade_imports()
    _downgrade_media_sizes()
    _downgrade_gold_and_standing()
    _downgrade_handles()


# -- handles: what an annotator sees of a task instead of the item id -----------------------
def _upgrade_handles() -> None:
    pass


def _downgrade_handles() -> None:
    pass


# -- gold: training and control items, standing history, excluded submissions -------------
def _upgrade_gold_and_standing() -> None:
    pass


def _downgrade_gold_and_standing() -> None:
    pass


# -- media: every image's size, stored at import ---------------------------------------------
def _upgrade_media_sizes() -> None:
    pass


def _downgrade_media_sizes() -> None:
    pass


# -- imports: what a source file carried that a field does not hold --------------------------
def _upgrade_imports() -> None:
    pass


def _downgrade_imports() -> None:
    pass
