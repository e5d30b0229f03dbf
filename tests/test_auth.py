"""Passwords, tokens, sessions, CSRF, security headers, signed media URLs."""

from __future__ import annotations

import httpx
import pytest
from PIL import Image
from sqlalchemy import text

from labelfarm.client import LabelfarmAPIError
from labelfarm.services.imports import import_items


def test_passwords_are_argon2id_and_tokens_are_stored_hashed(world):
    u = world.user("ann", password="long enough pw")
    with world.db.begin("read") as conn:
        pw = conn.execute(text("SELECT password_hash FROM users")).scalar_one()
        stored = conn.execute(text("SELECT token_hash FROM api_tokens")).scalar_one()
    assert pw.startswith("$argon2id$")
    assert u["token"] not in stored and len(stored) == 64


def test_short_passwords_are_refused(world):
    root = world.user("root", superuser=True)
    with pytest.raises(LabelfarmAPIError) as err:
        root["client"].create_user("x1", "short")
    assert err.value.details[0]["field"] == "password"


def test_token_is_shown_once_and_revocation_works(world):
    u = world.user("ann")
    created = u["client"].request("POST", f"/users/{u['id']}/tokens", json={"name": "laptop"})
    fresh = world.client(created["token"])
    assert fresh.me()["username"] == "ann"
    u["client"].request("DELETE", f"/users/{u['id']}/tokens/{created['id']}")
    with pytest.raises(LabelfarmAPIError) as err:
        fresh.me()
    assert err.value.status == 401


def test_session_cookie_flags_and_csrf(world):
    ws = world.workspace()
    world.user("mgr", role="manager", workspace=ws, password="long enough pw")
    http = httpx.Client(transport=world.transport, base_url="http://testserver")
    r = http.post("/api/v1/auth/login", json={"username": "mgr", "password": "long enough pw"})
    assert r.status_code == 200
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    csrf = r.json()["csrf_token"]
    assert http.get("/api/v1/me").json()["username"] == "mgr"
    body = {"name": "p", "schema": {"fields": [{"name": "x", "type": "text"}]}}
    no_csrf = http.post(f"/api/v1/workspaces/{ws['id']}/projects", json=body)
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.json()["error"]["message"]
    ok = http.post(
        f"/api/v1/workspaces/{ws['id']}/projects", json=body, headers={"X-CSRF-Token": csrf}
    )
    assert ok.status_code == 201
    http.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert http.get("/api/v1/me").status_code == 401


def test_wrong_password_and_unknown_user_answer_alike(world):
    world.user("mgr", password="long enough pw")
    http = httpx.Client(transport=world.transport, base_url="http://testserver")
    a = http.post("/api/v1/auth/login", json={"username": "mgr", "password": "nope"})
    b = http.post("/api/v1/auth/login", json={"username": "ghost", "password": "nope"})
    assert a.status_code == b.status_code == 401 and a.json() == b.json()


def test_security_headers_on_every_response(world):
    http = httpx.Client(transport=world.transport, base_url="http://testserver")
    for path in ("/healthz", "/api/v1/nothing", "/api/v1/openapi.json"):
        r = http.get(path)
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
    assert http.get("/docs").status_code == 404  # built-in docs pages load from a CDN


def test_media_urls_are_signed_short_lived_and_per_user(world, tmp_path, clock):
    ws = world.workspace()
    ann = world.user("ann", role="annotator", workspace=ws)
    project = world.project(
        ws,
        schema={
            "data": {"image": "image"},
            "fields": [{"name": "label", "type": "choice", "options": ["x"]}],
        },
        lease_seconds=60,
    )
    (tmp_path / "p").mkdir()
    Image.new("RGB", (4, 4), "green").save(tmp_path / "p" / "g.png")
    import_items(
        world.db,
        project,
        tmp_path / "p",
        "folder",
        media=world.ctx.media,
        now=clock(),
        user_id=None,
    )
    url = ann["client"].next(project.id)[0]["media_url"]
    http = httpx.Client(transport=world.transport, base_url="http://testserver")
    r = http.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert http.get(url.replace("&signature=", "&signature=0")).status_code == 403
    other_user = url.replace(f"user={ann['id']}", f"user={ann['id'] + 1}")
    assert http.get(other_user).status_code == 403
    clock.advance(61)
    assert http.get(url).status_code == 403
