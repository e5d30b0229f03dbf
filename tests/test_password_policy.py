"""The password policy holds wherever a password is set: the API, the CLI, the services."""

from __future__ import annotations

import pytest

from labelfarm.client import LabelfarmAPIError
from labelfarm.errors import InvalidInput
from labelfarm.services import passwords, users


def _rules(password: str, username: str = "ravi") -> set[str]:
    return {p["rule"] for p in passwords.policy_problems(password, username)}


def test_each_rule_is_reported_on_its_own():
    assert _rules("a fine passphrase") == set()
    assert _rules("short pw") == {"min_length"}
    assert _rules("x" * 1025) == {"max_length"}
    assert _rules("y" * 1024) == set()
    assert _rules("1234567890") == {"common"}
    assert _rules("Password123") == {"common"}  # case does not help
    assert _rules("hello RAVI kumar") == {"contains_username"}
    assert _rules("ravi") == {"min_length", "contains_username"}


def test_the_common_list_is_shipped_with_its_source():
    common = passwords.common_passwords()
    assert len(common) == 10_000 and "password" in common and "qwertyuiop" in common
    from importlib.resources import files

    shipped = files("labelfarm.services").joinpath("common_passwords.txt").read_text()
    header = [line for line in shipped.splitlines()[:30] if line.startswith("#")]
    assert "zxcvbn" in " ".join(header) and "# MIT License" in header


def test_the_api_refuses_a_bad_password_with_a_detail_per_rule(world):
    root = world.user("root", superuser=True)
    with pytest.raises(LabelfarmAPIError) as err:
        root["client"].create_user("priya", "priya")
    assert err.value.status == 422
    assert {d["rule"] for d in err.value.details} == {"min_length", "contains_username"}
    assert all(d["field"] == "password" for d in err.value.details)
    with pytest.raises(LabelfarmAPIError) as err:
        root["client"].create_user("priya", "qwertyuiop")
    assert [d["rule"] for d in err.value.details] == ["common"]
    assert root["client"].create_user("priya", "tea at four, always")["username"] == "priya"


def test_the_services_refuse_it_too(world):
    with pytest.raises(InvalidInput) as err:
        world.db.run(users.register, username="anbu", password="anbu12345678", now=0.0)
    assert [d["rule"] for d in err.value.details] == ["contains_username"]


def test_the_cli_refuses_it(settings, monkeypatch):
    from typer.testing import CliRunner

    from labelfarm.cli import app

    monkeypatch.setenv("LABELFARM_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("LABELFARM_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("LABELFARM_SECRET_KEY", "test-secret")
    runner = CliRunner()
    r = runner.invoke(app, ["init", "--admin-username", "root", "--admin-password", "password1"])
    assert r.exit_code != 0 and "password" in r.output
    r = runner.invoke(app, ["init", "--admin-username", "root", "--admin-password", "a long pass"])
    assert r.exit_code == 0, r.output
