"""After sign-in the browser goes only to a path of this site: ``next`` targets that a
browser would read as another host, in any spelling, are replaced by ``/``."""

from __future__ import annotations

import html
import re

import httpx
import pytest

from labelfarm.web.pages.redirects import same_origin_path

OFF_SITE = [
    "/\\127.0.0.1:8112/phish",
    "/%5C127.0.0.1:8112/phish",
    "/%5c127.0.0.1:8112/phish",
    "/%255C127.0.0.1:8112/phish",
    "/\t/evil.example/",
    "/%09/evil.example/",
    "/%0a/evil.example/",
    "/\n/evil.example",
    "/\r/evil.example",
    "/\x00/evil.example",
    "/\x7f/evil.example",
    "//evil.example",
    "//evil.example/path",
    "/%2Fevil.example",
    "/%2fevil.example",
    "/%252Fevil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "https://evil.example",
    "https:evil.example",
    "javascript:alert(1)",
    "evil.example",
    " /\t/evil.example",
    "\t//evil.example",
    "/w/1\\..\\..\\evil",
    "",
]
SAME_SITE = ["/", "/w/3", "/projects/7/annotate?lang=ta", "/w/1#members", "/a%20b"]


@pytest.mark.parametrize("target", OFF_SITE)
def test_off_site_targets_become_the_home_page(target):
    assert same_origin_path(target) == "/"


@pytest.mark.parametrize("target", SAME_SITE)
def test_paths_of_this_site_are_kept(target):
    assert same_origin_path(target) == target


def _next_of_login_page(http: httpx.Client, query: str) -> str:
    page = http.get(f"/login?{query}", headers={"Accept": "text/html"})
    assert page.status_code == 200
    found = re.search(r'data-next="([^"]*)"', page.text)
    assert found
    return html.unescape(found.group(1))


def test_the_login_page_hands_the_script_only_same_site_paths(world):
    http = httpx.Client(transport=world.transport, base_url="http://testserver")
    for raw in (
        "next=/%5C127.0.0.1:8112/phish",
        "next=/%09/evil.example/",
        "next=%2F%2Fevil.example",
        "next=https%3A%2F%2Fevil.example",
        "next=/%255C127.0.0.1/phish",
        "next=/%0D/evil",
    ):
        assert _next_of_login_page(http, raw) == "/", raw
    assert _next_of_login_page(http, "next=%2Fw%2F3%3Flang%3Dta") == "/w/3?lang=ta"
    assert _next_of_login_page(http, "") == "/"


def test_a_page_that_needs_sign_in_sends_back_to_itself(world):
    ws = world.workspace()
    http = httpx.Client(transport=world.transport, base_url="http://testserver")
    r = http.get(f"/w/{ws['id']}?lang=ta", headers={"Accept": "text/html"})
    assert r.status_code == 303
    assert r.headers["location"] == f"/login?next=%2Fw%2F{ws['id']}%3Flang%3Dta"


def test_the_login_script_checks_the_target_again():
    from importlib.resources import files

    script = files("labelfarm.web").joinpath("static/js/pages/login.js").read_text()
    assert "location.assign(sameOriginPath(form.dataset.next))" in script
    assert "url.origin === location.origin" in script
