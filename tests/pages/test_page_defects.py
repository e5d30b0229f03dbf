"""Pages new users hit: error pages in the user's language without internal names, the
quality settings on the settings page, and the catalogue keys both need."""

from __future__ import annotations

import re
from html import unescape

import pytest
from lf_site import HTML, Site

from labelfarm import i18n
from labelfarm.db.project_settings import DEFAULTS, SETTING_TYPES, rule
from labelfarm.web.pages.setting_inputs import QUALITY

POLICY_NAME = re.compile(r"\b(project|workspace)\.[a-z_]+\b")


def _text(html: str) -> str:
    """The visible text of the page's main content."""
    main = html.split("<main", 1)[-1]
    return unescape(re.sub(r"<[^>]+>", " ", main))


@pytest.mark.parametrize("who,lang", [("anbu", "ta"), ("annotator", "en")])
def test_a_refusal_page_speaks_the_users_language_and_names_roles(
    site: Site, who: str, lang: str
) -> None:
    cat = i18n.catalogue(lang)
    settings = f"/projects/{site.world.projects['animals']}/settings"
    r = site.client(who).get(settings, headers=HTML)
    assert r.status_code == 403
    assert f'lang="{lang}"' in r.text
    text = _text(r.text)
    assert cat.t("error.forbidden") in text
    assert cat.t("role.annotator") in text and cat.t("role.manager") in text
    assert not POLICY_NAME.search(r.text)
    assert "may not do this" not in text


def test_a_missing_page_speaks_the_users_language(site: Site) -> None:
    ta = i18n.catalogue("ta")
    r = site.client("anbu").get("/projects/987654", headers=HTML)
    assert r.status_code == 404
    text = _text(r.text)
    assert ta.t("error.not_found") in text and ta.t("error_detail.not_found") in text
    assert "no project" not in text and "no such" not in text
    # the chosen language still wins over the user's
    r = site.client("anbu").get("/projects/987654?lang=hi", headers=HTML)
    assert i18n.catalogue("hi").t("error_detail.not_found") in _text(r.text)


def test_api_refusals_name_roles_not_policies(site: Site) -> None:
    settings = f"/api/v1/projects/{site.world.projects['animals']}"
    r = site.client("annotator").patch(settings, json={"gold_rate": 0.1})
    assert r.status_code == 403
    error = r.json()["error"]
    assert not POLICY_NAME.search(error["message"])
    assert error["details"] == [
        {"reason": "role", "role": "annotator", "allowed": ["admin", "manager"]}
    ]


def _inputs(html: str) -> dict[str, str]:
    return {
        m.group(1): m.group(0)
        for m in re.finditer(r'<input name="([a-z_]+)" data-setting[^>]*>', html)
    } | {
        m.group(1): m.group(0)
        for m in re.finditer(r'<input type="checkbox" name="([a-z_]+)" data-setting[^>]*>', html)
    }


def test_the_settings_page_has_every_quality_setting(site: Site) -> None:
    manager = site.client("manager")
    pid = site.world.projects["texts"]
    changed = {"gold_rate": 0.15, "qualification_n": 4, "training": True, "max_overlap": 3}
    manager.patch(f"/api/v1/projects/{pid}", json=changed).raise_for_status()
    html = manager.get(f"/projects/{pid}/settings", headers=HTML).text
    inputs = _inputs(html)
    assert set(QUALITY) >= {"gold_rate", "qualification_n", "qualification_pass", "training"}
    assert set(QUALITY) >= {"accuracy_floor", "max_overlap", "target_confidence"}
    assert set(inputs) == set(QUALITY)
    for name in QUALITY:
        tag = inputs[name]
        value = changed.get(name, DEFAULTS[name])
        if SETTING_TYPES[name] is bool:
            assert (" checked" in tag) == bool(value), tag
            continue
        assert f'value="{value}"' in tag, tag
        bounds = rule(name)  # the browser checks the bounds the API checks
        assert f'min="{bounds.low}"' in tag and f'max="{bounds.high}"' in tag, tag
    # the new-project page offers them too, with the defaults
    new = manager.get(f"/w/{site.world.workspace_id}/new", headers=HTML).text
    assert set(_inputs(new)) == set(QUALITY)


@pytest.mark.parametrize("lang", ["en", "ta", "hi"])
def test_every_quality_setting_and_error_has_its_words(lang: str) -> None:
    messages = i18n.catalogue(lang).messages
    for name in QUALITY:
        assert f"setting.{name}" in messages and f"setting_help.{name}" in messages, name
    for code in ("forbidden", "forbidden_role", "not_found", "other"):
        assert f"error_detail.{code}" in messages


@pytest.mark.parametrize(
    "source,line",
    [
        (
            "fields:\n  - name: a\n    type: choice\n    options: [x]\n"
            "  - name: b\n    type: colour\n",
            6,
        ),
        ("fields:\n- {name: a, type: choice, options: [x]}\n- {name: b,\n   type: colour}\n", 4),
        ("data:\n  text: text\n  pic: picture\nfields:\n  - {name: a, type: text}\n", 3),
        ("fields:\n  - {name: a, type: text}\nextra: 1\n", 3),
    ],
)
def test_schema_errors_point_at_the_line_they_are_about(source: str, line: int) -> None:
    from labelfarm.errors import SchemaError
    from labelfarm.schema.compiled import parse_schema_text

    with pytest.raises(SchemaError) as err:
        parse_schema_text(source)
    assert [d["line"] for d in err.value.details] == [line]
