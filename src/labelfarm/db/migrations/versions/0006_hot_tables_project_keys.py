"""No foreign key from the queue's hot tables to ``projects``.

Every lease and every annotation inserted a row checked against the project's single row:
PostgreSQL takes a share lock on that row for each check, held to the end of the
transaction, so with dozens of annotators at once every insert had to build a new
multi-transaction lock record naming all the others, and the queue slowed as more people
worked. ``project_id`` on these rows is a copy of the item's project (they keep their
foreign key to ``items``, whose ``project_id`` keeps its own), written from the item by the
queue and checked by the submission, so the key to ``projects`` added no protection.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TABLES = ("assignments", "annotations")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"fk_{table}_project_id_projects", type_="foreignkey")


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.create_foreign_key(
                f"fk_{table}_project_id_projects", "projects", ["project_id"], ["id"]
            )
