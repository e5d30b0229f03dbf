"""Labels made in another tool, imported with their items.

They are stored as annotations with ``status = 'imported'``, by one non-login user per
workspace and source annotator (``import:<workspace>:<name>``, no password, inactive), with
client ids ``import:<import id>:<n>``. They do not count against the queue's overlap: they
are not leases or submissions of this project's workforce, so an imported, already-labelled
item is still handed to ``overlap`` annotators (to check or relabel); they take part in the
item's label like any other annotation.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from sqlalchemy import select

from labelfarm.db.tables import metadata, users, workspaces
from labelfarm.db.tx import CoreTx
from labelfarm.formats import ItemRecord
from labelfarm.jsonutil import dumps
from labelfarm.services.projects import Project

# (``tables.annotations`` by name: mypy confuses it with ``from __future__ import annotations``)
annotations_table = metadata.tables["annotations"]


class Stager:
    """Per import: the users standing for source annotators, and annotations counted."""

    def __init__(self, import_id: int) -> None:
        self.import_id = import_id
        self.users: dict[str, int] = {}
        self.n_annotations = 0

    def user_id(self, tx: CoreTx, project: Project, name: str, now: float) -> int:
        if name not in self.users:
            self.users[name] = import_user(tx, project.workspace_id, name, now)
        return self.users[name]


_UNSAFE = re.compile(r"[^A-Za-z0-9_.@\-]+")


def import_user(tx: CoreTx, workspace_id: int, name: str, now: float) -> int:
    """The non-login user standing for annotator ``name`` of another tool in a workspace."""
    slug = tx.execute(select(workspaces.c.slug).where(workspaces.c.id == workspace_id)).scalar_one()
    clean = _UNSAFE.sub("_", name.strip())[:80] or "unknown"
    if clean != name:
        clean += "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
    username = f"import:{slug}:{clean}"[:150]
    found = tx.execute(select(users.c.id).where(users.c.username == username)).scalar()
    if found is not None:
        return int(found)
    return int(
        tx.execute(
            users.insert()
            .values(
                username=username,
                password_hash=None,
                display_name=name[:200] or "unknown",
                pseudonym="i-" + secrets.token_hex(6),
                is_superuser=False,
                is_active=False,
                created_at=now,
            )
            .returning(users.c.id)
        ).scalar_one()
    )


def stage_annotations(
    tx: CoreTx,
    project: Project,
    batch: list[ItemRecord],
    ids: list[int],
    stage: Stager,
    now: float,
) -> None:
    rows = []
    for rec, item_id in zip(batch, ids, strict=True):
        for ann in rec.annotations:
            stage.n_annotations += 1
            rows.append(
                {
                    "project_id": project.id,
                    "item_id": item_id,
                    "user_id": stage.user_id(tx, project, str(ann["annotator"]), now),
                    "client_id": f"import:{stage.import_id}:{stage.n_annotations}",
                    "value": dumps(ann["value"]),
                    "schema_version": project.schema_version,
                    "status": "imported",
                    "late_reason": None,
                    "corrects_id": None,
                    "from_prediction": False,
                    "duration_ms": ann.get("duration_ms"),
                    "created_at": ann.get("created_at") or now,
                    "source_meta": dumps(ann["source_meta"]) if ann.get("source_meta") else None,
                }
            )
    if rows:
        tx.execute(annotations_table.insert(), rows)
