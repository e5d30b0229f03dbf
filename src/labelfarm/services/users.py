"""Users, sites, passwords, API tokens and browser sessions.

Passwords are hashed with argon2id (:mod:`labelfarm.services.passwords`), always outside
every transaction and lock (a hash takes tens of milliseconds and 64 MiB: the SQLite writer is
never held meanwhile), in :func:`register` and :func:`log_in`, which are marked so that the
server runs only a few at a time. API tokens and session ids are random secrets stored only
as SHA-256 (a token is shown once, at creation): a lookup is one indexed read and the server
caches it briefly, so authentication costs microseconds on the hot path.
"""

from __future__ import annotations

import re
import secrets
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from labelfarm.db.engine import Database
from labelfarm.db.tables import sessions, sites, users
from labelfarm.db.tx import CoreTx, Sql, Tx, transaction, workflow
from labelfarm.errors import Conflict, InvalidInput, NotAuthenticated, NotFound
from labelfarm.services import audit, passwords, workspaces
from labelfarm.services.passwords import hashes_password

# API tokens and the Principal a request acts as live in .tokens; named here as well
from labelfarm.services.tokens import (  # noqa: F401
    Caller,
    Principal,
    create_token,
    list_tokens,
    principal_for_token,
    revoke_token,
    sha256_hex,
)

_USERNAME = re.compile(r"^[A-Za-z0-9_.@\-]{2,150}$")


def hash_password(password: str, username: str | None = None) -> str:
    """The hash of a new password, which must meet the policy (see :mod:`.passwords`)."""
    return passwords.hash_new_password(password, username)


@transaction("write")
def create_site(tx: CoreTx, *, code: str, name: str, now: float) -> dict[str, Any]:
    try:
        site_id = tx.execute(
            sites.insert().values(code=code, name=name, created_at=now).returning(sites.c.id)
        ).scalar_one()
    except IntegrityError:
        raise Conflict(f"site {code!r} exists", [{"field": "code"}]) from None
    return {"id": site_id, "code": code, "name": name}


def _site_id(tx: CoreTx, code: str) -> int:
    site_id = tx.execute(select(sites.c.id).where(sites.c.code == code)).scalar()
    if site_id is None:
        raise NotFound(f"no site {code!r}", [{"field": "site"}])
    return int(site_id)


@transaction("write")
def create_user(
    tx: CoreTx,
    *,
    username: str,
    password_hash: str | None,
    now: float,
    display_name: str | None = None,
    site: str | None = None,
    locale: str = "en",
    is_superuser: bool = False,
    actor_id: int | None = None,
) -> dict[str, Any]:
    """A new user; ``password_hash`` from :func:`hash_password` (None: token access only),
    ``site`` a site's code. Use :func:`register`, which hashes outside the transaction."""
    if not _USERNAME.match(username):
        raise InvalidInput(
            "username must be 2-150 letters, digits or . _ - @",
            [{"field": "username", "reason": "invalid characters or length"}],
        )
    site_id = _site_id(tx, site) if site else None
    for _ in range(5):
        pseudonym = "a-" + secrets.token_hex(4)
        exists = tx.execute(select(users.c.id).where(users.c.pseudonym == pseudonym)).first()
        if not exists:
            break
    if tx.execute(select(users.c.id).where(users.c.username == username)).first():
        raise Conflict(f"user {username!r} exists", [{"field": "username"}])
    user_id = tx.execute(
        users.insert()
        .values(
            username=username,
            password_hash=password_hash,
            display_name=display_name or username,
            pseudonym=pseudonym,
            site_id=site_id,
            locale=locale,
            is_superuser=is_superuser,
            is_active=True,
            created_at=now,
        )
        .returning(users.c.id)
    ).scalar_one()
    audit.record(
        tx,
        action="user.create",
        target=f"user:{user_id}",
        now=now,
        actor_id=actor_id,
        details={"username": username, "superuser": is_superuser},
    )
    return {"id": user_id, "username": username, "pseudonym": pseudonym}


@hashes_password
@workflow
def register(
    db: Database,
    *,
    username: str,
    password: str | None,
    now: float,
    workspace_id: int | None = None,
    role: str | None = None,
    actor_id: int | None = None,
    **profile: Any,
) -> dict[str, Any]:
    """Create a user (``profile``: display_name, site, locale, is_superuser) and, with
    ``workspace_id``, make them a member with ``role``: the password is hashed first, then
    one write transaction does the rest. The API, the CLI and the tests all onboard this way."""
    password_hash = hash_password(password, username) if password is not None else None
    return db.run(
        _create_member,
        username=username,
        password_hash=password_hash,
        now=now,
        workspace_id=workspace_id,
        role=role,
        actor_id=actor_id,
        profile=profile,
    )


@transaction("write")
def _create_member(
    tx: CoreTx,
    *,
    workspace_id: int | None,
    role: str | None,
    now: float,
    actor_id: int | None,
    profile: dict[str, Any],
    **user: Any,
) -> dict[str, Any]:
    created = create_user(tx, now=now, actor_id=actor_id, **user, **profile)
    if workspace_id is None:
        return created
    if role is None:
        raise InvalidInput("a member needs a role", [{"field": "role"}])
    workspaces.set_role(
        tx, workspace_id=workspace_id, user_id=created["id"], role=role, now=now, actor_id=actor_id
    )
    return {**created, "role": role}


@transaction("read")
def get_user(tx: CoreTx, user_id: int) -> dict[str, Any]:
    row = (
        tx.execute(
            select(
                users.c.id,
                users.c.username,
                users.c.display_name,
                users.c.pseudonym,
                users.c.site_id,
                users.c.locale,
                users.c.is_superuser,
                users.c.is_active,
            ).where(users.c.id == user_id)
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no user {user_id}")
    return dict(row)


@transaction("read")
def user_by_username(tx: CoreTx, username: str) -> dict[str, Any]:
    row = tx.execute(select(users.c.id).where(users.c.username == username)).first()
    if row is None:
        raise NotFound(f"no user {username!r}", [{"field": "username"}])
    return get_user(tx, row.id)


class Credentials(NamedTuple):
    id: int
    password_hash: str | None
    is_active: bool


CREDENTIALS = Sql(
    "SELECT id, password_hash, is_active FROM users WHERE username = :u", row=Credentials
)


@transaction("read")
def _credentials(tx: Tx, username: str) -> Credentials | None:
    return tx.one(CREDENTIALS, {"u": username})


def _verify(credentials: Credentials | None, password: str) -> bool:
    """The password against the stored hash (a constant hash when the user is unknown, so
    timing does not tell)."""
    stored = credentials.password_hash if credentials else None
    return (
        passwords.verify(stored, password)
        and credentials is not None
        and bool(credentials.is_active)
    )


@hashes_password
@workflow
def log_in(
    db: Database, username: str, password: str, *, now: float, session_hours: float
) -> dict[str, Any]:
    """Check credentials (outside every transaction), open a session, audit the login.
    Returns the user, the session secret and its CSRF token; NotAuthenticated otherwise
    (the same error for an unknown user and a wrong password). Failed attempts are counted
    by the caller (the server tallies them, :mod:`labelfarm.services.audit_tally`), not
    written one row each."""
    credentials = db.run(_credentials, username)
    if not _verify(credentials, password) or credentials is None:  # hashes either way
        raise NotAuthenticated("wrong username or password")
    return db.run(_open_session, credentials.id, now, session_hours)


@transaction("write")
def _open_session(tx: CoreTx, user_id: int, now: float, hours: float) -> dict[str, Any]:
    secret, csrf = create_session(tx, user_id=user_id, now=now, hours=hours)
    audit.record(tx, action="login", target=f"user:{user_id}", now=now, actor_id=user_id)
    return {"user": get_user(tx, user_id), "secret": secret, "csrf_token": csrf}


SESSION_PRINCIPAL = Sql(
    "SELECT u.id, u.username, u.pseudonym, u.is_superuser, s.csrf_token, s.expires_at "
    "FROM sessions s "
    "JOIN users u ON u.id = s.user_id "
    "WHERE s.id_hash = :h AND s.expires_at > :now AND u.is_active",
    row=Caller,
)


# -- sessions --------------------------------------------------------------------------------
def create_session(tx: CoreTx, *, user_id: int, now: float, hours: float) -> tuple[str, str]:
    """A new browser session: (session secret for the cookie, CSRF token)."""
    secret = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    tx.execute(
        sessions.insert().values(
            id_hash=sha256_hex(secret),
            user_id=user_id,
            csrf_token=csrf,
            created_at=now,
            expires_at=now + hours * 3600,
        )
    )
    return secret, csrf


@transaction("lookup")
def principal_for_session(tx: Tx, secret: str, now: float) -> Principal | None:
    row = tx.one(SESSION_PRINCIPAL, {"h": sha256_hex(secret), "now": now})
    if row is None:
        return None
    return Principal(
        row.id,
        row.username,
        row.pseudonym,
        bool(row.is_superuser),
        "session",
        row.csrf_token,
        row.expires_at,
    )


@transaction("write")
def end_session(tx: CoreTx, secret: str, *, now: float) -> None:
    """Sign out: the session is deleted and, if it existed, the logout audited."""
    user_id = tx.execute(
        sessions.delete()
        .where(sessions.c.id_hash == sha256_hex(secret))
        .returning(sessions.c.user_id)
    ).scalar()
    if user_id is not None:
        audit.record(tx, action="logout", target=f"user:{user_id}", now=now, actor_id=user_id)


@transaction("read")
def me(tx: CoreTx, user_id: int) -> dict[str, Any]:
    """A user with the workspaces they may see (every one for an instance administrator)."""
    user = get_user(tx, user_id)
    user["workspaces"] = workspaces.workspaces_of(tx, user_id, all_=bool(user["is_superuser"]))
    return user
