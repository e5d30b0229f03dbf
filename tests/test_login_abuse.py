"""Sign-in abuse: failed sign-ins are limited per address and per (account, address) with a
growing wait, checked before any hashing; a flood of hashes never takes the worker threads;
proxies are believed only when trusted; failed sign-ins are audited in aggregate."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from sqlalchemy import text

from labelfarm.jsonutil import loads
from labelfarm.services import passwords
from labelfarm.web.login_limits import client_address, parse_networks

RIGHT = "the right password"
LOGIN = "/api/v1/auth/login"


@pytest.fixture
def settings(settings, request):
    """The conftest's settings, changed by ``@pytest.mark.parametrize("settings", [...],
    indirect=True)``."""
    return settings.model_copy(update=getattr(request, "param", {}))


@pytest.fixture
def portal() -> Iterator[BlockingPortal]:
    with start_blocking_portal() as p:
        yield p


def _post(
    portal: BlockingPortal,
    app: Any,
    body: dict,
    *,
    address: str = "203.0.113.5",
    headers: dict | None = None,
) -> httpx.Response:
    """One sign-in from ``address`` (the direct peer of the connection)."""

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.post(LOGIN, json=body, headers=headers)

    return portal.call(call)


def _hash_seconds() -> float:
    t0 = time.perf_counter()
    passwords.verify(None, "a password to time")
    return time.perf_counter() - t0


def test_failures_get_429_with_a_growing_retry_after(world, portal):
    ws = world.workspace()
    world.user("ravi", role="annotator", workspace=ws, password=RIGHT)
    wrong = {"username": "ravi", "password": "not the password"}
    free = world.ctx.settings.login_free_failures_per_account
    assert [_post(portal, world.app, wrong).status_code for _ in range(free)] == [401] * free
    waits = []
    for _ in range(4):
        refused = _post(portal, world.app, wrong)
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "too_many_requests"
        waits.append(int(refused.headers["Retry-After"]))
        # a throttled attempt is refused before hashing, even with the right password
        t0 = time.perf_counter()
        again = _post(portal, world.app, {"username": "ravi", "password": RIGHT})
        assert again.status_code == 429 and time.perf_counter() - t0 < _hash_seconds() / 2
        world.clock.advance(waits[-1])
        assert _post(portal, world.app, wrong).status_code == 401  # hashed once more
    assert waits == [1, 2, 4, 8]
    world.clock.advance(16)
    assert _post(portal, world.app, {"username": "ravi", "password": RIGHT}).status_code == 200
    # a right password starts the pair afresh
    assert [_post(portal, world.app, wrong).status_code for _ in range(free)] == [401] * free


def test_no_one_locks_an_annotator_out_from_another_address(world, portal):
    ws = world.workspace()
    world.user("ravi", role="annotator", workspace=ws, password=RIGHT)
    wrong = {"username": "ravi", "password": "not the password"}
    for _ in range(world.ctx.settings.login_free_failures_per_account):
        _post(portal, world.app, wrong, address="198.51.100.66")
    assert _post(portal, world.app, wrong, address="198.51.100.66").status_code == 429
    ok = _post(portal, world.app, {"username": "ravi", "password": RIGHT}, address="192.0.2.10")
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("settings", [{"login_free_failures_per_address": 4}], indirect=True)
def test_an_address_trying_many_accounts_is_limited(world, portal):
    world.user("ravi", password=RIGHT)
    codes = [
        _post(portal, world.app, {"username": f"user{i}", "password": "wrong password"}).status_code
        for i in range(6)
    ]
    assert codes == [401] * 4 + [429] * 2
    ok = _post(portal, world.app, {"username": "ravi", "password": RIGHT}, address="192.0.2.10")
    assert ok.status_code == 200


def test_client_address_believes_only_trusted_proxies():
    trusted = parse_networks(["10.0.0.0/8", "::1"])
    assert client_address("203.0.113.5", ["1.2.3.4"], trusted) == "203.0.113.5"
    assert client_address("10.1.2.3", ["6.6.6.6, 1.2.3.4"], trusted) == "1.2.3.4"
    assert client_address("10.1.2.3", ["6.6.6.6, 1.2.3.4, 10.9.9.9"], trusted) == "1.2.3.4"
    assert client_address("10.1.2.3", ["6.6.6.6", "1.2.3.4"], trusted) == "1.2.3.4"
    assert client_address("::1", [" 2001:db8::1 "], trusted) == "2001:db8::1"
    assert client_address("10.1.2.3", [], trusted) == "10.1.2.3"
    assert client_address("10.1.2.3", ["1.2.3.4"], ()) == "10.1.2.3"  # no proxy trusted


@pytest.mark.parametrize("settings", [{"trusted_proxies": ["10.0.0.1"]}], indirect=True)
def test_forwarded_for_counts_only_behind_a_trusted_proxy(world, portal):
    world.user("ravi", password=RIGHT)
    wrong = {"username": "ravi", "password": "not the password"}
    free = world.ctx.settings.login_free_failures_per_account

    def attempt(peer: str, forwarded: str) -> int:
        headers = {"X-Forwarded-For": forwarded}
        return _post(portal, world.app, wrong, address=peer, headers=headers).status_code

    # behind the load balancer: each client is told apart by the address it forwards
    assert [attempt("10.0.0.1", "9.9.9.9, 1.2.3.4") for _ in range(free + 1)][-1] == 429
    assert attempt("10.0.0.1", "1.2.3.5") == 401
    # a direct caller cannot pick a new address with the header
    codes = [attempt("203.0.113.9", f"5.6.7.{i}") for i in range(free + 1)]
    assert codes[-1] == 429
    world.ctx.tally.flush(world.db, world.clock(), everything=True)
    with world.db.begin("read") as conn:
        targets = set(
            conn.execute(
                text("SELECT target FROM audit_log WHERE action = 'login.failed'")
            ).scalars()
        )
    assert targets == {"address:1.2.3.4", "address:1.2.3.5", "address:203.0.113.9"}


def test_failed_logins_are_audited_in_aggregate(world, portal):
    world.user("ravi", password=RIGHT)
    secret = "s3cret guess 42"
    for i in range(3):
        _post(portal, world.app, {"username": "ravi", "password": f"{secret}{i}"})
    _post(portal, world.app, {"username": "ghost", "password": secret})
    with world.db.begin("read") as conn:
        before = conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
    assert world.ctx.tally.flush(world.db, world.clock(), everything=True) == 3
    with world.db.begin("read") as conn:
        rows = conn.execute(
            text("SELECT action, target, details FROM audit_log WHERE id > :n ORDER BY id"),
            {"n": before},
        ).all()
    counts = {(r.action, r.target): loads(r.details)["count"] for r in rows}
    assert counts == {
        ("login.failed", "address:203.0.113.5"): 4,
        ("login.failed.username", "username:ravi"): 3,
        ("login.failed.username", "username:ghost"): 1,
    }
    assert all(secret not in r.details for r in rows)  # attempted passwords, never


@pytest.mark.parametrize("settings", [{"login_limits": False}], indirect=True)
def test_a_flood_of_wrong_passwords_leaves_the_worker_threads_free(world, portal):
    """Had every sign-in taken a worker thread to wait for its turn to hash, a read route
    would wait behind dozens of hashes."""
    flood = 60  # more than the worker threads (40)
    world.user("ravi", password=RIGHT)
    ann = world.user("anbu")
    one_hash = _hash_seconds()

    async def run() -> tuple[float, int]:
        transport = httpx.ASGITransport(app=world.app, client=("203.0.113.5", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=120) as h:
            body = {"username": "ravi", "password": "not the password"}
            logins = [asyncio.create_task(h.post(LOGIN, json=body)) for _ in range(flood)]
            await asyncio.sleep(one_hash / 2)  # every sign-in has started
            t0 = time.perf_counter()
            me = await h.get("/api/v1/me", headers={"Authorization": f"Bearer {ann['token']}"})
            took = time.perf_counter() - t0
            done = sum(t.done() for t in logins)
            assert me.status_code == 200
            for task in logins:  # the sign-ins still waiting give up (no thread to free)
                task.cancel()
            await asyncio.gather(*logins, return_exceptions=True)
            return took, done

    took, done = portal.call(run)
    assert done <= 8, f"the read waited for {done} sign-ins"
    assert took < 4 * one_hash, (took, one_hash)


@pytest.mark.parametrize(
    "settings",
    [{"login_limits": False, "password_hashes_in_flight": 1, "password_hash_queue": 2}],
    indirect=True,
)
def test_sign_ins_beyond_the_hash_queue_are_refused_at_once(world, portal):
    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=world.app, client=("203.0.113.5", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=60) as h:
            body = {"username": "ravi", "password": "not the password"}
            return list(await asyncio.gather(*(h.post(LOGIN, json=body) for _ in range(10))))

    answers = portal.call(run)
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [401] * 3 + [503] * 7, statuses
    busy = next(r for r in answers if r.status_code == 503)
    assert busy.headers["Retry-After"] == "1" and busy.json()["error"]["code"] == "busy"


def test_an_unknown_user_costs_a_hash_like_a_wrong_password(world, portal):
    """Else the answer's timing tells which usernames exist."""
    world.user("ravi", password=RIGHT)
    one_hash = _hash_seconds()
    t0 = time.perf_counter()
    r = _post(portal, world.app, {"username": "nobody-here", "password": "not the password"})
    assert r.status_code == 401 and time.perf_counter() - t0 > one_hash / 2
