"""Message catalogues: English, Tamil and Hindi complete; every key the pages use exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from labelfarm import i18n

WEB = Path(i18n.__file__).resolve().parent.parent / "web"
_KEY = re.compile(r"""\bt\(\s*["']([a-z_]+\.[a-z_]+)["']""")
_DYNAMIC = re.compile(r"""\bt\(\s*["']([a-z_]+)\.["']\s*~""")


def test_the_three_languages_are_shipped() -> None:
    assert set(i18n.languages()) >= {"en", "ta", "hi"}


@pytest.mark.parametrize("lang", ["ta", "hi"])
def test_catalogue_is_complete_with_the_same_placeholders(lang: str) -> None:
    en = i18n.catalogue("en").messages
    other = i18n.catalogue(lang).messages
    assert set(other) == set(en)
    for key, text in en.items():
        assert other[key].strip(), key
        assert i18n.placeholders(other[key]) == i18n.placeholders(text), key


@pytest.mark.parametrize("lang", ["ta", "hi"])
def test_translations_are_not_english(lang: str) -> None:
    """Apart from format names and field type names, no Latin words are left."""
    allowed = {
        "JSONL",
        "CSV",
        "TSV",
        "YAML",
        "choice",
        "multichoice",
        "text",
        "number",
        "bbox",
        "display",
    }
    for key, text in i18n.catalogue(lang).messages.items():
        words = set(re.findall(r"[A-Za-z]{2,}", re.sub(r"\{\w+\}", "", text))) - allowed
        assert not words, (key, words)


def test_every_key_used_by_templates_and_modules_exists() -> None:
    en = i18n.catalogue("en").messages
    used: set[str] = set()
    prefixes: set[str] = set()
    for path in [*WEB.glob("templates/*.html"), *WEB.glob("static/js/**/*.js")]:
        text = path.read_text("utf-8")
        used |= set(_KEY.findall(text))
        prefixes |= set(_DYNAMIC.findall(text))
    assert used, "no message keys found"
    assert sorted(used - set(en)) == []
    for prefix in prefixes:
        assert any(k.startswith(prefix + ".") for k in en), prefix


def test_translate_fills_placeholders_and_falls_back_to_english() -> None:
    ta = i18n.catalogue("ta")
    assert ta.t("annotate.pending", n=3).startswith("3 ")
    assert i18n.catalogue("xx").lang == "en"
    assert i18n.pick_language(None, "zz", accept_language="hi-IN,en;q=0.5") == "hi"
