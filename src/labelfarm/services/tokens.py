"""API tokens, and the :class:`Principal` a request acts as.

A token is a random secret stored only as SHA-256 and shown once, at creation. It works
until revoked or, when created with one, until its expiry. A lookup is one indexed read
(:func:`principal_for_token`, on the hot path when the server's brief cache misses); the
cached principal carries the expiry, so an expired token is refused at once, cache or not.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import select

from labelfarm.db.tables import api_tokens, users
from labelfarm.db.tx import CoreTx, Sql, Tx, transaction
from labelfarm.errors import InvalidInput, NotFound
from labelfarm.jsonutil import iso
from labelfarm.services import audit

TOKEN_PREFIX = "lf_"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user, authenticated by token or session."""

    user_id: int
    username: str
    pseudonym: str
    is_superuser: bool
    via: str  # "token" | "session"
    csrf_token: str | None = None
    #: when the credential stops being valid (None: a token without expiry); a cached
    #: principal is refused from then on
    expires_at: float | None = None


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


MAX_TOKEN_DAYS = 3660.0


def _token_expiry(now: float, expires_days: float | None, expires_at: float | None) -> float | None:
    """When a new token expires: ``expires_days`` from now, or at ``expires_at``, or never."""
    if expires_days is not None and expires_at is not None:
        raise InvalidInput("give expires_days or expires_at, not both", [{"field": "expires_at"}])
    if expires_days is not None:
        if not 0 < expires_days <= MAX_TOKEN_DAYS:
            raise InvalidInput(
                f"expires_days must be more than 0 and at most {MAX_TOKEN_DAYS:g}",
                [{"field": "expires_days"}],
            )
        return now + expires_days * 86400.0
    if expires_at is not None and not now < expires_at <= now + MAX_TOKEN_DAYS * 86400.0:
        raise InvalidInput(
            f"expires_at must be in the future, within {MAX_TOKEN_DAYS:g} days",
            [{"field": "expires_at"}],
        )
    return expires_at


@transaction("write")
def create_token(
    tx: CoreTx,
    *,
    user_id: int,
    name: str,
    now: float,
    actor_id: int | None = None,
    expires_days: float | None = None,
    expires_at: float | None = None,
) -> dict[str, Any]:
    """A new API token, valid until revoked or, if given, until ``expires_at`` (epoch
    seconds) or for ``expires_days``. The secret is in the result and nowhere else, ever
    again."""
    expiry = _token_expiry(now, expires_days, expires_at)
    if tx.execute(select(users.c.id).where(users.c.id == user_id)).first() is None:
        raise NotFound(f"no user {user_id}")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = tx.execute(
        api_tokens.insert()
        .values(
            user_id=user_id,
            name=name,
            token_hash=sha256_hex(secret),
            prefix=secret[:10],
            created_at=now,
            expires_at=expiry,
        )
        .returning(api_tokens.c.id)
    ).scalar_one()
    audit.record(
        tx,
        action="token.create",
        target=f"user:{user_id}",
        now=now,
        actor_id=actor_id if actor_id is not None else user_id,
        details={"token_id": token_id, "name": name, "expires_at": iso(expiry)},
    )
    return {
        "id": token_id,
        "name": name,
        "token": secret,
        "prefix": secret[:10],
        "created_at": iso(now),
        "expires_at": iso(expiry),
    }


@transaction("read")
def list_tokens(tx: CoreTx, user_id: int, now: float) -> list[dict[str, Any]]:
    """A user's tokens, newest first: what identifies each and whether it still works;
    never the secret (only its first characters, ``prefix``)."""
    rows = tx.execute(
        select(
            api_tokens.c.id,
            api_tokens.c.name,
            api_tokens.c.prefix,
            api_tokens.c.created_at,
            api_tokens.c.expires_at,
            api_tokens.c.revoked_at,
        )
        .where(api_tokens.c.user_id == user_id)
        .order_by(api_tokens.c.id.desc())
    )
    return [
        {
            "id": r.id,
            "name": r.name,
            "prefix": r.prefix,
            "created_at": iso(r.created_at),
            "expires_at": iso(r.expires_at),
            "revoked_at": iso(r.revoked_at),
            "active": r.revoked_at is None and (r.expires_at is None or r.expires_at > now),
        }
        for r in rows
    ]


@transaction("write")
def revoke_token(tx: CoreTx, *, token_id: int, user_id: int, now: float) -> None:
    n = tx.execute(
        api_tokens.update()
        .where(api_tokens.c.id == token_id, api_tokens.c.user_id == user_id)
        .values(revoked_at=now)
    ).rowcount
    if not n:
        raise NotFound(f"no token {token_id}")
    audit.record(tx, action="token.revoke", target=f"user:{user_id}", now=now, actor_id=user_id)


# Looked up on every request whose cache entry expired, on the hot path's raw cursors.
class Caller(NamedTuple):
    id: int
    username: str
    pseudonym: str
    is_superuser: bool
    csrf_token: str | None  # sessions only
    expires_at: float | None


TOKEN_PRINCIPAL = Sql(
    "SELECT u.id, u.username, u.pseudonym, u.is_superuser, NULL, t.expires_at "
    "FROM api_tokens t JOIN users u ON u.id = t.user_id "
    "WHERE t.token_hash = :h AND t.revoked_at IS NULL "
    "AND (t.expires_at IS NULL OR t.expires_at > :now) AND u.is_active",
    row=Caller,
)


@transaction("lookup")
def principal_for_token(tx: Tx, secret: str, now: float) -> Principal | None:
    """Who a token acts for, unless it is revoked or expired (a caller that caches the
    answer checks ``expires_at`` on each use)."""
    row = tx.one(TOKEN_PRINCIPAL, {"h": sha256_hex(secret), "now": now})
    if row is None:
        return None
    return Principal(
        row.id,
        row.username,
        row.pseudonym,
        bool(row.is_superuser),
        "token",
        expires_at=row.expires_at,
    )
