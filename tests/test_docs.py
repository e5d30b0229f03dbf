"""Settings and commands are documented."""

from __future__ import annotations

from pathlib import Path

from labelfarm.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented():
    doc = (ROOT / "docs" / "settings.md").read_text()
    missing = [n for n in Settings.model_fields if f"LABELFARM_{n.upper()}" not in doc]
    assert missing == []
    assert all(f.description for f in Settings.model_fields.values())


def test_every_command_is_in_the_readme():
    from labelfarm.cli import app

    readme = (ROOT / "README.md").read_text()
    names = [c.name or c.callback.__name__ for c in app.registered_commands]
    names += [
        f"{g.name} {c.name}"
        for g in app.registered_groups
        for c in g.typer_instance.registered_commands
    ]
    assert names and all(f"labelfarm {n}" in readme for n in names)
