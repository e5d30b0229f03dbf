"""Users, sites, passwords, API tokens and browser sessions.

Passwords are hashed with argon2id. API tokens and session ids are random secrets stored
only as SHA-256 (a token is shown once, at creation): a lookup is one indexed read and the
server caches it briefly, so authentication costs microseconds on the hot path.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from labelfarm.db.hot import Hot, Sql
from labelfarm.db.tables import api_tokens, sessions, sites, users
from labelfarm.errors import Conflict, InvalidInput, NotAuthenticated, NotFound
from labelfarm.services import audit

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Each hash takes the hasher's memory cost (64 MiB): one at a time per process keeps a burst
# of logins (a shift starting) from multiplying it, and caps what a login flood can cost.
_hashing = threading.Lock()
_USERNAME = re.compile(r"^[A-Za-z0-9_.@\-]{2,150}$")
TOKEN_PREFIX = "lf_"
# A constant hash to verify against when a username is unknown, so timing does not tell.
_DUMMY_HASH = _hasher.hash("labelfarm-not-a-password")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user, authenticated by token or session."""

    user_id: int
    username: str
    pseudonym: str
    is_superuser: bool
    via: str  # "token" | "session"
    csrf_token: str | None = None


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise InvalidInput(
            "password must be at least 8 characters",
            [{"field": "password", "reason": "too short"}],
        )
    with _hashing:
        return _hasher.hash(password)


def create_site(conn: Connection, *, code: str, name: str, now: float) -> dict[str, Any]:
    try:
        site_id = conn.execute(
            sites.insert().values(code=code, name=name, created_at=now).returning(sites.c.id)
        ).scalar_one()
    except IntegrityError:
        raise Conflict(f"site {code!r} exists", [{"field": "code"}]) from None
    return {"id": site_id, "code": code, "name": name}


def site_id_for(conn: Connection, code: str) -> int:
    site_id = conn.execute(select(sites.c.id).where(sites.c.code == code)).scalar()
    if site_id is None:
        raise NotFound(f"no site {code!r}", [{"field": "site"}])
    return int(site_id)


def create_user(
    conn: Connection,
    *,
    username: str,
    password: str | None,
    now: float,
    display_name: str | None = None,
    site_id: int | None = None,
    locale: str = "en",
    is_superuser: bool = False,
    actor_id: int | None = None,
) -> dict[str, Any]:
    if not _USERNAME.match(username):
        raise InvalidInput(
            "username must be 2-150 letters, digits or . _ - @",
            [{"field": "username", "reason": "invalid characters or length"}],
        )
    pw_hash = hash_password(password) if password is not None else None
    for _ in range(5):
        pseudonym = "a-" + secrets.token_hex(4)
        exists = conn.execute(select(users.c.id).where(users.c.pseudonym == pseudonym)).first()
        if not exists:
            break
    if conn.execute(select(users.c.id).where(users.c.username == username)).first():
        raise Conflict(f"user {username!r} exists", [{"field": "username"}])
    user_id = conn.execute(
        users.insert()
        .values(
            username=username,
            password_hash=pw_hash,
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
        conn,
        action="user.create",
        target=f"user:{user_id}",
        now=now,
        actor_id=actor_id,
        details={"username": username, "superuser": is_superuser},
    )
    return {"id": user_id, "username": username, "pseudonym": pseudonym}


def get_user(conn: Connection, user_id: int) -> dict[str, Any]:
    row = (
        conn.execute(
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


def user_by_username(conn: Connection, username: str) -> dict[str, Any]:
    row = conn.execute(select(users.c.id).where(users.c.username == username)).first()
    if row is None:
        raise NotFound(f"no user {username!r}", [{"field": "username"}])
    return get_user(conn, row.id)


def authenticate(conn: Connection, username: str, password: str) -> dict[str, Any]:
    """The user with these credentials, or NotAuthenticated (same error either way)."""
    row = conn.execute(
        select(users.c.id, users.c.password_hash, users.c.is_active).where(
            users.c.username == username
        )
    ).first()
    stored = row.password_hash if row is not None and row.password_hash else _DUMMY_HASH
    try:
        with _hashing:
            _hasher.verify(stored, password)
        ok = row is not None and bool(row.password_hash) and bool(row.is_active)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or row is None:
        raise NotAuthenticated("wrong username or password")
    return get_user(conn, row.id)


def set_password(conn: Connection, user_id: int, password: str) -> None:
    conn.execute(
        users.update().where(users.c.id == user_id).values(password_hash=hash_password(password))
    )


# -- API tokens -----------------------------------------------------------------------------
def create_token(
    conn: Connection, *, user_id: int, name: str, now: float, actor_id: int | None = None
) -> dict[str, Any]:
    """A new API token. The secret is in the result and nowhere else, ever again."""
    get_user(conn, user_id)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = conn.execute(
        api_tokens.insert()
        .values(
            user_id=user_id,
            name=name,
            token_hash=sha256_hex(secret),
            prefix=secret[:10],
            created_at=now,
        )
        .returning(api_tokens.c.id)
    ).scalar_one()
    audit.record(
        conn,
        action="token.create",
        target=f"user:{user_id}",
        now=now,
        actor_id=actor_id if actor_id is not None else user_id,
        details={"token_id": token_id, "name": name},
    )
    return {"id": token_id, "name": name, "token": secret, "prefix": secret[:10]}


def revoke_token(conn: Connection, *, token_id: int, user_id: int, now: float) -> None:
    n = conn.execute(
        api_tokens.update()
        .where(api_tokens.c.id == token_id, api_tokens.c.user_id == user_id)
        .values(revoked_at=now)
    ).rowcount
    if not n:
        raise NotFound(f"no token {token_id}")
    audit.record(conn, action="token.revoke", target=f"user:{user_id}", now=now, actor_id=user_id)


# Looked up on every request whose cache entry expired, on the hot path's raw cursors.
TOKEN_PRINCIPAL = Sql(
    "SELECT u.id, u.username, u.pseudonym, u.is_superuser FROM api_tokens t "
    "JOIN users u ON u.id = t.user_id "
    "WHERE t.token_hash = :h AND t.revoked_at IS NULL AND u.is_active"
)
SESSION_PRINCIPAL = Sql(
    "SELECT u.id, u.username, u.pseudonym, u.is_superuser, s.csrf_token FROM sessions s "
    "JOIN users u ON u.id = s.user_id "
    "WHERE s.id_hash = :h AND s.expires_at > :now AND u.is_active"
)


def principal_for_token(hot: Hot, secret: str) -> Principal | None:
    row = hot.one(TOKEN_PRINCIPAL, {"h": sha256_hex(secret)})
    if row is None:
        return None
    return Principal(row[0], row[1], row[2], bool(row[3]), "token")


# -- sessions --------------------------------------------------------------------------------
def create_session(conn: Connection, *, user_id: int, now: float, hours: float) -> tuple[str, str]:
    """A new browser session: (session secret for the cookie, CSRF token)."""
    secret = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    conn.execute(
        sessions.insert().values(
            id_hash=sha256_hex(secret),
            user_id=user_id,
            csrf_token=csrf,
            created_at=now,
            expires_at=now + hours * 3600,
        )
    )
    return secret, csrf


def principal_for_session(hot: Hot, secret: str, now: float) -> Principal | None:
    row = hot.one(SESSION_PRINCIPAL, {"h": sha256_hex(secret), "now": now})
    if row is None:
        return None
    return Principal(row[0], row[1], row[2], bool(row[3]), "session", row[4])


def end_session(conn: Connection, secret: str) -> None:
    conn.execute(sessions.delete().where(sessions.c.id_hash == sha256_hex(secret)))
