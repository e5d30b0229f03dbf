"""One error body shape for every error, from every layer."""

from __future__ import annotations

import httpx
import pytest

from labelfarm.client import AppTransport


@pytest.fixture
def http(world):
    return httpx.Client(
        transport=AppTransport(world.app, raise_app_exceptions=False), base_url="http://testserver"
    )


def _shape(r: httpx.Response) -> dict:
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def test_error_shapes(world, http):
    root = world.user("root", superuser=True)
    auth = {"Authorization": f"Bearer {root['token']}"}
    assert _shape(http.get("/api/v1/nowhere"))["code"] == "not_found"
    assert _shape(http.delete("/healthz"))["code"] == "method_not_allowed"
    assert _shape(http.get("/api/v1/me"))["code"] == "not_authenticated"
    assert _shape(http.get("/api/v1/me", headers={"Authorization": "Basic x"}))["code"] == (
        "not_authenticated"
    )
    bad = http.post("/api/v1/workspaces", json={"slug": 3}, headers=auth)
    err = _shape(bad)
    assert bad.status_code == 422 and err["details"][0]["field"] == "slug"
    dup = http.post("/api/v1/workspaces", json={"slug": "a"}, headers=auth)
    dup = http.post("/api/v1/workspaces", json={"slug": "a"}, headers=auth)
    assert dup.status_code == 409 and _shape(dup)["code"] == "conflict"
    schema = {"fields": [{"name": "x", "type": "choice", "options": []}]}
    r = http.post(
        f"/api/v1/workspaces/{dup.json() and 1}/projects",
        json={"name": "p", "schema": schema},
        headers=auth,
    )
    assert r.status_code == 422 and _shape(r)["code"] == "invalid_schema"


def test_schema_yaml_errors_carry_lines(world, http):
    root = world.user("root", superuser=True)
    ws = world.workspace()
    auth = {"Authorization": f"Bearer {root['token']}"}
    yaml_text = (
        "fields:\n  - name: a\n    type: choice\n    options: [x]\n  - name: b\n    type: nope\n"
    )
    r = http.post(
        f"/api/v1/workspaces/{ws['id']}/projects",
        json={"name": "p", "schema": yaml_text},
        headers=auth,
    )
    err = _shape(r)
    assert err["details"][0]["line"] == 6 and "nope" in err["message"]  # the type line
