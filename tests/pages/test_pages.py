"""Page routes: sign-in, refusals, CSP-clean HTML, languages, static caching, service worker."""

from __future__ import annotations

import gzip
import re

import pytest
from lf_site import HTML, Site

from labelfarm.web.pages.assets import ASSETS, VERSION

_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I)
_INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)
_STYLE_ATTR = re.compile(r"\sstyle\s*=", re.I)


def page_paths(site: Site) -> list[str]:
    w, p = site.world, site.world.projects
    return [
        f"/w/{w.workspace_id}",
        f"/w/{w.workspace_id}/new",
        f"/w/{w.workspace_id}/members",
        f"/projects/{p['animals']}",
        f"/projects/{p['animals']}/settings",
        f"/projects/{p['animals']}/import",
        f"/projects/{p['animals']}/annotate",
        f"/projects/{p['boxes']}/annotate",
    ]


def test_every_page_renders_without_inline_script_or_style(site: Site) -> None:
    client = site.client("admin")
    for path in [*page_paths(site), "/login"]:
        r = client.get(path, headers=HTML)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in r.headers["content-security-policy"]
        html = r.text
        assert not _INLINE_SCRIPT.search(html), path
        assert not _INLINE_HANDLER.search(html), path
        assert not _STYLE_ATTR.search(html), path
        assert "http://" not in html and "https://" not in html, path  # nothing from outside


def test_signed_out_browser_goes_to_login_and_api_clients_get_json(site: Site) -> None:
    path = f"/projects/{site.world.projects['animals']}/annotate"
    r = site.client().get(path, headers=HTML)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Fprojects%2F2%2Fannotate"
    r = site.client().get(path)
    assert r.status_code == 401
    assert set(r.json()["error"]) == {"code", "message", "details"}


def test_roles_and_foreign_workspaces_are_refused_on_pages(site: Site) -> None:
    annotator = site.client("annotator")
    animals = site.world.projects["animals"]
    assert annotator.get(f"/projects/{animals}", headers=HTML).status_code == 403  # progress
    assert annotator.get(f"/projects/{animals}/settings", headers=HTML).status_code == 403
    assert annotator.get(f"/w/{site.world.workspace_id}/members", headers=HTML).status_code == 403
    assert annotator.get(f"/projects/{animals}/annotate", headers=HTML).status_code == 200
    client = site.client("client")
    assert client.get(f"/projects/{animals}", headers=HTML).status_code == 200
    assert client.get(f"/projects/{animals}/annotate", headers=HTML).status_code == 403
    outsider = site.client("outsider")
    for path in page_paths(site):
        assert outsider.get(path, headers=HTML).status_code == 404, path


def test_annotator_project_list_shows_no_progress_of_others(site: Site) -> None:
    html = site.client("annotator").get(f"/w/{site.world.workspace_id}", headers=HTML).text
    assert "/annotate" in html
    assert "<progress" not in html
    assert "/settings" not in html
    manager = site.client("manager").get(f"/w/{site.world.workspace_id}", headers=HTML).text
    assert "<progress" in manager and "/settings" in manager


def test_language_from_query_cookie_and_user_locale(site: Site) -> None:
    path = f"/projects/{site.world.projects['animals']}/annotate"
    anbu = site.client("anbu")  # locale ta
    html = anbu.get(path, headers=HTML).text
    assert '<html lang="ta"' in html and "சமர்ப்பி" in html
    r = anbu.get(path + "?lang=hi", headers=HTML)
    assert '<html lang="hi"' in r.text and "जमा करें" in r.text
    assert "labelfarm_lang=hi" in r.headers["set-cookie"]
    anbu.cookies.set("labelfarm_lang", "hi")
    assert '<html lang="hi"' in anbu.get(path, headers=HTML).text
    html = site.client("annotator").get(path, headers={**HTML, "Accept-Language": "ta-IN"}).text
    assert '<html lang="en"' in html  # the user's own locale (en) comes before the browser's


def test_pages_revalidate_with_etag(site: Site) -> None:
    client = site.client("annotator")
    path = f"/projects/{site.world.projects['animals']}/annotate"
    first = client.get(path, headers=HTML)
    assert first.headers["cache-control"] == "private, no-cache"
    again = client.get(path, headers={**HTML, "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_static_files_are_versioned_immutable_gzipped_with_etags(site: Site) -> None:
    import httpx

    from labelfarm.client import AppTransport

    transport = AppTransport(site.app)
    client = httpx.Client(transport=transport, base_url="http://testserver")
    html = (
        site.client("annotator")
        .get(f"/projects/{site.world.projects['animals']}/annotate", headers=HTML)
        .text
    )
    urls = re.findall(r'(?:href|src)="(/static/[^"]+)"', html)
    assert f"/static/{VERSION}/js/annotate.js" in urls
    assert all(u.startswith(f"/static/{VERSION}/") for u in urls)
    r = client.get(f"/static/{VERSION}/js/annotate.js", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["content-type"].startswith("text/javascript")
    assert r.headers["content-encoding"] == "gzip"
    assert r.content == ASSETS["js/annotate.js"].body  # httpx decoded it
    assert int(r.headers["content-length"]) < len(r.content)
    r304 = client.get(
        f"/static/{VERSION}/js/annotate.js", headers={"If-None-Match": r.headers["etag"]}
    )
    assert r304.status_code == 304
    old = client.get("/static/0123456789ab/js/annotate.js")
    assert old.status_code == 200 and old.headers["cache-control"] == "no-cache"
    assert client.get(f"/static/{VERSION}/js/nope.js").status_code == 404
    assert client.get(f"/static/{VERSION}/../i18n/en.json").status_code == 404
    transport.close()


def test_annotate_page_weight(site: Site) -> None:
    """HTML, CSS and every module of the annotate page, gzipped as served: well under 150 KB."""
    client = site.client("annotator")
    html = client.get(f"/projects/{site.world.projects['boxes']}/annotate", headers=HTML)
    total = len(gzip.compress(html.content))
    for url in set(re.findall(r'(?:href|src)="(/static/[^"]+)"', html.text)):
        asset = ASSETS[url.split("/", 3)[3]]
        total += len(asset.gzipped or asset.body)
    assert total < 60 * 1024, total


def test_service_worker_is_served_from_the_root(site: Site) -> None:
    r = site.client().get("/sw.js")
    assert r.status_code == 200
    assert r.headers["service-worker-allowed"] == "/"
    assert r.headers["cache-control"] == "no-cache"
    assert f'const VERSION = "{VERSION}"' in r.text
    assert f"/static/{VERSION}/js/annotate.js" in r.text


def test_logout_needs_the_csrf_token(site: Site) -> None:
    client = site.client("reviewer")
    csrf = client.headers.pop("X-CSRF-Token")
    r = client.post("/logout", data={"csrf_token": "wrong"}, headers=HTML)
    assert r.status_code == 403
    r = client.post("/logout", data={"csrf_token": csrf}, headers=HTML)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert client.get("/api/v1/me").status_code == 401


@pytest.mark.parametrize("username", ["admin", "manager"])
def test_home_redirects_to_the_first_workspace(site: Site, username: str) -> None:
    r = site.client(username).get("/", headers=HTML)
    assert r.status_code == 303 and r.headers["location"] == f"/w/{site.world.workspace_id}"
