"""A workspace admin manages their own workspace's members and learns nothing about the
instance's other accounts: only instance administrators add an outside user."""

from __future__ import annotations

from typing import Any

import pytest

from labelfarm.client import LabelfarmAPIError

PASSWORD = "quiet-orchard-lantern-42"


@pytest.fixture
def instance(world: Any) -> dict[str, Any]:
    acme, other = world.workspace("acme"), world.workspace("other")
    return {
        "acme": acme,
        "admin": world.user("acme-admin", role="admin", workspace=acme),
        "member": world.user("member", role="annotator", workspace=acme),
        "outsider": world.user("outsider", role="annotator", workspace=other),
        "root": world.user("root", superuser=True),
    }


def _error(call: Any) -> tuple[int, str, str, list[dict[str, Any]]]:
    with pytest.raises(LabelfarmAPIError) as refused:
        call()
    e = refused.value
    return e.status, e.code, str(e), e.details


def test_an_outside_user_looks_like_no_user_to_a_workspace_admin(
    world: Any, instance: dict[str, Any]
) -> None:
    admin, ws = instance["admin"]["client"], instance["acme"]["id"]
    outsider = instance["outsider"]["id"]
    unknown = outsider + 1000
    seen = _error(lambda: admin.set_role(ws, outsider, "annotator"))
    assert seen[0] == 404
    absent = _error(lambda: admin.set_role(ws, unknown, "annotator"))
    assert seen[:2] == absent[:2] and seen[3] == absent[3]
    assert seen[2].replace(str(outsider), "ID") == absent[2].replace(str(unknown), "ID")
    members = admin.request("GET", f"/workspaces/{ws}/members")["members"]
    assert "outsider" not in {m["username"] for m in members}


def test_a_workspace_admin_changes_members_roles(world: Any, instance: dict[str, Any]) -> None:
    admin, ws = instance["admin"]["client"], instance["acme"]["id"]
    member = instance["member"]["id"]
    assert admin.set_role(ws, member, "reviewer")["role"] == "reviewer"
    members = admin.request("GET", f"/workspaces/{ws}/members")["members"]
    assert {m["username"]: m["role"] for m in members}["member"] == "reviewer"


def test_an_instance_admin_adds_an_outside_user(world: Any, instance: dict[str, Any]) -> None:
    root, ws = instance["root"]["client"], instance["acme"]["id"]
    assert root.set_role(ws, instance["outsider"]["id"], "annotator")["role"] == "annotator"
    assert _error(lambda: root.set_role(ws, 10_000, "annotator"))[0] == 404


def test_a_taken_username_is_not_confirmed_to_a_workspace_admin(
    world: Any, instance: dict[str, Any]
) -> None:
    admin, ws = instance["admin"]["client"], instance["acme"]["id"]
    path = f"/workspaces/{ws}/members"
    body = {"password": PASSWORD, "role": "annotator"}
    status, code, message, details = _error(
        lambda: admin.request("POST", path, json={"username": "outsider", **body})
    )
    assert status == 422 and code != "conflict"
    assert "exist" not in message and "outsider" not in message
    assert details == [{"field": "username", "reason": "not available"}]
    # a free name is created and joins the workspace
    created = admin.request("POST", path, json={"username": "newcomer", **body})
    assert created["role"] == "annotator"
    # an instance administrator is told plainly
    root = instance["root"]["client"]
    status, code, *_ = _error(
        lambda: root.request("POST", path, json={"username": "outsider", **body})
    )
    assert (status, code) == (409, "conflict")
