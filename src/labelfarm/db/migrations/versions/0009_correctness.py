"""Correctness: blind gold behind per-lease handles, training and control gold, standing
history, stored image sizes, what imports keep.

Each part has its own pair of functions below.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

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
    """Nothing stored: a handle is the item id encrypted for the annotator and the project
    (:mod:`labelfarm.services.tasks.handles`), decoded on the way in."""


def _downgrade_handles() -> None:
    """Nothing to undo."""


# -- gold: training and control items, standing history, excluded submissions -------------
def _upgrade_gold_and_standing() -> None:
    # gold kinds: the gold items so far were the measuring set, never to be revealed
    op.add_column("items", sa.Column("gold_kind", sa.String(16), nullable=True))
    op.execute("UPDATE items SET gold_kind = 'control' WHERE is_gold")
    # a skipped gold item is scored as a miss, without an annotation
    with op.batch_alter_table("gold_results") as batch:
        batch.alter_column("annotation_id", existing_type=sa.Integer(), nullable=True)
    _upgrade_exclusions_reviews_history()


def _downgrade_gold_and_standing() -> None:
    _downgrade_exclusions_reviews_history()
    op.execute("DELETE FROM gold_results WHERE annotation_id IS NULL")
    with op.batch_alter_table("gold_results") as batch:
        batch.alter_column("annotation_id", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("items", recreate="never") as batch:
        batch.drop_column("gold_kind")


# Submissions left out of labels, reviewed items closed, the history of standing changes.
def _upgrade_exclusions_reviews_history() -> None:
    # why an annotation is left out of labels: paused | failed (its annotator's standing when
    # it came in) | relabel (sent back by a manager); NULL: it counts
    op.add_column("annotations", sa.Column("excluded", sa.String(16), nullable=True))
    # a review decision closes its item for good
    op.add_column(
        "items",
        sa.Column("is_reviewed", sa.Boolean(), nullable=False, server_default=sa.text("false")),
    )
    op.execute(
        "UPDATE items SET is_reviewed = true, is_open = false "
        "WHERE id IN (SELECT item_id FROM reviews)"
    )
    op.create_table(
        "standing_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("evidence", sa.Text(), server_default="{}", nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("audit_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_standing_events_project_id_projects")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_standing_events_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_standing_events_actor_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_standing_events")),
    )
    op.create_index("ix_standing_events_user", "standing_events", ["project_id", "user_id", "id"])
    op.create_index(
        "ix_standing_events_unaudited",
        "standing_events",
        ["id"],
        sqlite_where=sa.text("audit_id IS NULL"),
        postgresql_where=sa.text("audit_id IS NULL"),
    )
    _seed_standing_history()


def _seed_standing_history() -> None:
    """Every standing set so far (by a rule or by hand) becomes the first event of its
    annotator's history; the manager's user id leaves the evidence for the event's actor.
    Changes by a rule were never audited: they wait for it (``audit_id`` NULL); changes by
    hand were (``audit_id`` 0: audited before the history was kept)."""
    import json

    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT project_id, user_id, state, reason, evidence, updated_at "
            "FROM annotator_status WHERE evidence <> '{}' ORDER BY updated_at"
        )
    ).all()
    role_of = sa.text(
        "SELECT m.role FROM memberships m JOIN projects p ON p.workspace_id = m.workspace_id "
        "WHERE p.id = :p AND m.user_id = :u"
    )
    for r in rows:
        loaded = json.loads(r.evidence or "{}")
        evidence = dict(loaded) if isinstance(loaded, dict) else {}
        actor = evidence.pop("set_by", None)
        if "previous" in evidence:  # set by hand
            role = bind.execute(role_of, {"p": r.project_id, "u": actor}).scalar()
            evidence = {"kind": "manual", "by_role": role or "admin", **evidence}
        elif "gold_answers" in evidence:
            evidence = {"kind": "accuracy_floor", **evidence}
        elif "qualification_answers" in evidence:
            evidence = {"kind": "qualification", **evidence}
        text_ = json.dumps(evidence)
        params = {"p": r.project_id, "u": r.user_id, "e": text_}
        bind.execute(
            sa.text(
                "UPDATE annotator_status SET evidence = :e WHERE project_id = :p AND user_id = :u"
            ),
            params,
        )
        bind.execute(
            sa.text(
                "INSERT INTO standing_events (project_id, user_id, state, reason, evidence, "
                "actor_id, created_at, audit_id) VALUES (:p, :u, :s, :r, :e, :a, :t, :audit)"
            ),
            {
                **params,
                "s": r.state,
                "r": r.reason,
                "a": actor,
                "t": r.updated_at,
                "audit": 0 if evidence.get("kind") == "manual" else None,
            },
        )


def _downgrade_exclusions_reviews_history() -> None:
    op.drop_index("ix_standing_events_unaudited", table_name="standing_events")
    op.drop_index("ix_standing_events_user", table_name="standing_events")
    op.drop_table("standing_events")
    with op.batch_alter_table("items", recreate="never") as batch:
        batch.drop_column("is_reviewed")
    with op.batch_alter_table("annotations", recreate="never") as batch:
        batch.drop_column("excluded")


# -- media: every image's size, stored at import ---------------------------------------------
def _upgrade_media_sizes() -> None:
    # the size in pixels of an item's image: decoded from its stored media at import, or as
    # the source file gives it (Label Studio's original_width/original_height); NULL: unknown
    # (items imported before: ``labelfarm media check`` fills those with stored media)
    op.add_column("items", sa.Column("image_width", sa.Float(), nullable=True))
    op.add_column("items", sa.Column("image_height", sa.Float(), nullable=True))
    # what the source file said of an imported task, annotation or prediction beyond what
    # labelfarm holds (a Label Studio annotation's id, its results' ids, …), as JSON; written
    # back by an export in that format
    for table in ("items", "annotations", "predictions"):
        op.add_column(table, sa.Column("source_meta", sa.Text(), nullable=True))
    # an import's report of what its file held that it left out on purpose: [{reason, count}]
    op.add_column("imports", sa.Column("notes", sa.Text(), nullable=True))


def _downgrade_media_sizes() -> None:
    with op.batch_alter_table("imports", recreate="never") as batch:
        batch.drop_column("notes")
    for table in ("predictions", "annotations"):
        with op.batch_alter_table(table, recreate="never") as batch:
            batch.drop_column("source_meta")
    with op.batch_alter_table("items", recreate="never") as batch:
        batch.drop_column("source_meta")
        batch.drop_column("image_height")
        batch.drop_column("image_width")


# -- imports: what a source file carried that a field does not hold --------------------------
def _upgrade_imports() -> None:
    op.add_column("imports", sa.Column("file_meta", sa.Text(), nullable=True))


def _downgrade_imports() -> None:
    with op.batch_alter_table("imports") as batch:
        batch.drop_column("file_meta")
