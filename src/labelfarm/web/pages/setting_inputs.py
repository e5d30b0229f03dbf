"""The quality settings of a project as the settings form shows them, from
:class:`~labelfarm.db.project_settings.ProjectSettings`: every setting that is not one of the
form's basic inputs, each with its input kind and the bounds its rule checks, so the browser
refuses what the API would (the API, which the form sends to, has the last word and its errors
name the setting). A new setting appears on the form by itself; its label and help are the
catalogue's ``setting.<name>`` and ``setting_help.<name>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labelfarm.db.project_settings import DEFAULTS, SETTING_NAMES, SETTING_TYPES, rule

# settings with inputs of their own on the form (lease time in minutes, the ordering's and the
# sampler's names)
BASIC = frozenset(
    {"overlap", "lease_seconds", "ordering", "sampler", "max_live_leases", "max_checkout_hours"}
)
QUALITY = tuple(name for name in SETTING_NAMES if name not in BASIC)


def quality_inputs(project: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """One input per quality setting, holding the project's value (the default for a new
    project): ``name``, ``kind`` (check, number or text), ``value``, ``low``, ``high``,
    ``step``."""
    out = []
    for name in QUALITY:
        kind = SETTING_TYPES[name]
        bounds = rule(name)
        value = project[name] if project is not None and name in project else DEFAULTS[name]
        out.append(
            {
                "name": name,
                "kind": "check" if kind is bool else "number" if kind in (int, float) else "text",
                "value": value,
                "low": bounds.low,
                "high": bounds.high,
                "step": "1" if kind is int else "any",
            }
        )
    return out
