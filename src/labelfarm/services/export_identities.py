"""Who made an annotation, as another tool knows them: for migrations only.

Exports name annotators by pseudonym (clients never see more). A migration to another tool
(Label Studio's ``completed_by``) gives an explicit mapping instead: labelfarm username →
the annotator's identity there (a user id or an email). Annotations imported from that tool
carry their source annotator back without being mapped: the user standing for them keeps
the name the import read (``user-12`` for Label Studio's user 12, or an email).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from labelfarm.db.engine import Database
from labelfarm.db.tables import users, workspaces
from labelfarm.errors import InvalidInput

_SOURCE_USER = re.compile(r"^user-(\d+)$")


def check_mapping(mapping: Any) -> dict[str, int | str]:
    """The mapping as given, or InvalidInput saying what is wrong with it."""
    if not isinstance(mapping, dict):
        raise InvalidInput(
            "completed_by maps labelfarm usernames to user ids or emails (a JSON object)",
            [{"field": "completed_by", "reason": "not an object"}],
        )
    bad = [
        {"field": f"completed_by.{k}", "reason": "a user id (whole number) or an email"}
        for k, v in mapping.items()
        if isinstance(v, bool) or not isinstance(v, int | str) or v == ""
    ]
    if bad:
        raise InvalidInput("completed_by: each value is a user id or an email", bad)
    return dict(mapping)


def source_identity(name: str) -> int | str:
    """A source annotator's name as an import read it → their identity in that tool."""
    found = _SOURCE_USER.match(name)
    return int(found.group(1)) if found else name


def annotator_identities(db: Database, workspace_id: int, mapping: Any) -> dict[int, int | str]:
    """User id → identity in the other tool, for the mapped users of the workspace and for
    every annotator imported into it. A username the mapping names that does not exist is
    an error (a typo would silently leave that annotator out)."""
    mapping = check_mapping(mapping)
    with db.begin("read") as tx:
        slug = tx.execute(
            select(workspaces.c.slug).where(workspaces.c.id == workspace_id)
        ).scalar_one()
        prefix = f"import:{slug}:"
        imported = tx.execute(
            select(users.c.id, users.c.display_name).where(
                users.c.username.startswith(prefix, autoescape=True)
            )
        ).all()
        named = tx.execute(
            select(users.c.id, users.c.username).where(users.c.username.in_(list(mapping)))
        ).all()
    out: dict[int, int | str] = {uid: source_identity(name) for uid, name in imported}
    out.update({uid: mapping[username] for uid, username in named})
    missing = sorted(set(mapping) - {username for _, username in named})
    if missing:
        raise InvalidInput(
            f"completed_by names unknown user(s) {missing}",
            [{"field": f"completed_by.{m}", "reason": "no such user"} for m in missing],
        )
    return out
