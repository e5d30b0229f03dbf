"""API tokens may expire, and a user can list their own tokens (never a secret)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from labelfarm.client import LabelfarmAPIError
from labelfarm.jsonutil import iso


@pytest.fixture
def ann(world: Any) -> dict[str, Any]:
    ws = world.workspace()
    return world.user("ann", role="annotator", workspace=ws)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _refused(call: Any) -> LabelfarmAPIError:
    with pytest.raises(LabelfarmAPIError) as refused:
        call()
    return refused.value


def test_an_expired_token_is_refused_even_while_cached(world: Any, ann: dict[str, Any]) -> None:
    now = world.clock()
    created = ann["client"].request(
        "POST", f"/users/{ann['id']}/tokens", json={"name": "short", "expires_at": _iso(now + 5)}
    )
    assert created["expires_at"] == iso(now + 5)
    short = world.client(created["token"])
    assert short.me()["id"] == ann["id"]  # looked up, and cached for about 10 s
    world.clock.advance(6)  # expired; the cache entry has not
    assert world.ctx.tokens.get(created["token"])[0]
    error = _refused(short.me)
    assert error.status == 401
    world.ctx.tokens.clear()
    assert _refused(short.me).status == 401  # and the lookup refuses it too
    assert ann["client"].me()["id"] == ann["id"]  # a token without expiry still works


def test_expires_days(world: Any, ann: dict[str, Any]) -> None:
    secret = ann["client"].create_token(ann["id"], "week", expires_days=7)
    week = world.client(secret)
    world.clock.advance(7 * 86400 - 1)
    assert week.me()["id"] == ann["id"]
    world.clock.advance(2)
    assert _refused(week.me).status == 401


@pytest.mark.parametrize(
    "body",
    [
        {"expires_days": 0},
        {"expires_days": -1},
        {"expires_days": 100_000},
        {"expires_at": "2000-01-01T00:00:00Z"},  # the past
        {"expires_at": "next tuesday"},
        {"expires_days": 1, "expires_at": "2099-01-01T00:00:00Z"},
    ],
)
def test_a_bad_expiry_is_refused(ann: dict[str, Any], body: dict[str, Any]) -> None:
    path = f"/users/{ann['id']}/tokens"
    error = _refused(lambda: ann["client"].request("POST", path, json={"name": "x", **body}))
    assert error.status == 422


def test_users_list_their_own_tokens_without_secrets(world: Any, ann: dict[str, Any]) -> None:
    client, now = ann["client"], world.clock()
    kept = client.request(
        "POST", f"/users/{ann['id']}/tokens", json={"name": "ci", "expires_days": 30}
    )
    gone = client.request("POST", f"/users/{ann['id']}/tokens", json={"name": "old"})
    client.revoke_token(ann["id"], gone["id"])
    tokens = client.tokens(ann["id"])
    assert [t["name"] for t in tokens] == ["old", "ci", "test"]  # newest first
    by_name = {t["name"]: t for t in tokens}
    assert by_name["ci"] == {
        "id": kept["id"],
        "name": "ci",
        "prefix": kept["prefix"],
        "created_at": iso(now),
        "expires_at": iso(now + 30 * 86400),
        "revoked_at": None,
        "active": True,
    }
    assert by_name["old"]["revoked_at"] == iso(now) and not by_name["old"]["active"]
    assert by_name["test"]["expires_at"] is None and by_name["test"]["active"]
    text = repr(tokens)
    for secret in (kept["token"], gone["token"], ann["token"]):
        assert secret not in text
        assert secret[10:20] not in text  # nothing past the shown prefix
    world.clock.advance(31 * 86400)
    assert not {t["name"]: t for t in client.tokens(ann["id"])}["ci"]["active"]


def test_nobody_lists_another_users_tokens(world: Any, ann: dict[str, Any]) -> None:
    bob = world.user("bob", role="annotator", workspace=world.workspace("other"))
    assert _refused(lambda: bob["client"].tokens(ann["id"])).status == 403
    root = world.user("root", superuser=True)
    assert [t["name"] for t in root["client"].tokens(ann["id"])] == ["test"]
