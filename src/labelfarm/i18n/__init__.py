"""Message catalogues: every interface string of the web pages, per language.

One JSON file per language (``en.json``, ``ta.json``, ``hi.json``) maps message keys to
text with ``{name}`` placeholders. ``_meta`` names the language (in itself) and its writing
direction. English is the reference: a test keeps every other catalogue complete (same keys,
same placeholders). Label names and guidelines are not here: they come from each project's
schema (``field.display[lang]``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DEFAULT = "en"
_DIR = Path(__file__).resolve().parent
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Catalogue:
    lang: str
    name: str
    direction: str
    messages: dict[str, str]

    def t(self, key: str, **values: Any) -> str:
        """The message ``key`` with its placeholders filled; English if missing here."""
        text = self.messages.get(key)
        if text is None:
            text = catalogue(DEFAULT).messages.get(key, key) if self.lang != DEFAULT else key
        if values:
            return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), text)
        return text


@cache
def languages() -> dict[str, str]:
    """Language code → the language's own name, for every catalogue shipped."""
    out = {}
    for path in sorted(_DIR.glob("*.json")):
        out[path.stem] = json.loads(path.read_text("utf-8"))["_meta"]["name"]
    return out


@cache
def catalogue(lang: str) -> Catalogue:
    """The catalogue of ``lang`` (English when there is none)."""
    if lang not in languages():
        lang = DEFAULT
    raw = json.loads((_DIR / f"{lang}.json").read_text("utf-8"))
    meta = raw.pop("_meta")
    return Catalogue(lang, meta["name"], meta.get("dir", "ltr"), raw)


def placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


def pick_language(*candidates: str | None, accept_language: str = "") -> str:
    """The first supported language among ``candidates``, then the Accept-Language header."""
    known = languages()
    for lang in candidates:
        if lang and lang in known:
            return lang
    for part in accept_language.split(","):
        code = part.split(";")[0].strip().lower().split("-")[0]
        if code in known:
            return code
    return DEFAULT
