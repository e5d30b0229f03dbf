"""Media is never served as something a browser runs, and a media URL lives no longer than
what grants it.

Uploads go through real imports (a COCO zip, a JSONL file with media, a folder); every route
that answers with stored bytes is walked with HTML, SVG and JavaScript among them.
"""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import numpy as np
import pytest
import soundfile
from PIL import Image
from sqlalchemy import text
from typer.testing import CliRunner

from labelfarm.cli import app as cli_app
from labelfarm.client import LabelfarmAPIError
from labelfarm.db.engine import Database, migrate
from labelfarm.errors import ImportFailed
from labelfarm.services import audit
from labelfarm.services.imports import import_items
from labelfarm.services.media_check import check_file, check_media
from labelfarm.settings import Settings
from labelfarm.web.app import api_routes
from labelfarm.web.background import check_unchecked_media
from labelfarm.web.routes.media import MEDIA_CSP
from media_files import coco_zip, png

MEDIA_ROUTES = {
    "/media/{sha}",
    "/media/{sha}/fit/{size}",
    "/media/tasks/{project}/{handle}",
    "/media/tasks/{project}/{handle}/fit/{size}",
    "/media/{sha}/audio",
    "/media/{sha}/audio/peaks/{level}",
    "/media/{sha}/audio/stream",
    "/media/tasks/{project}/{handle}/audio",
    "/media/tasks/{project}/{handle}/audio/peaks/{level}",
    "/media/tasks/{project}/{handle}/audio/stream",
}
RUNNABLE = ("text/", "image/svg", "application/javascript", "application/ecmascript", "xml")
HTML = b"<!doctype html><html><body><script>document.title='pwned'</script></body></html>"
HOSTILE = {
    "x.js": b"document.title = 'pwned'; fetch('/api/v1/users', {method: 'POST'});",
    "x.html": HTML,
    "x.svg": b'<svg xmlns="http://www.w3.org/2000/svg" onload="document.title=1">'
    b"<script>document.title=2</script><rect width='9' height='9'/></svg>",
    "looks.png": HTML,  # a name that says image, content that is HTML
}
IMAGE_SCHEMA = {"fields": [{"name": "boxes", "type": "bbox", "labels": ["thing"]}]}
BOXES = {"boxes": [{"x": 1, "y": 1, "w": 5, "h": 5, "label": "thing"}]}
AUDIO_SCHEMA = {
    "data": {"audio": "audio"},
    "fields": [{"name": "label", "type": "choice", "options": ["a", "b"]}],
}


def wav() -> bytes:
    out = io.BytesIO()
    soundfile.write(out, np.zeros(8000, dtype=np.int16), 8000, format="WAV")
    return out.getvalue()


GOOD = {"real.png": ("image/png", png()), "real.jpg": ("image/jpeg", png(fmt="JPEG"))}


def jsonl_with_media(folder: Path, files: dict[str, bytes], key: str = "name") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, content in files.items():
        (folder / name).write_bytes(content)
        rows.append(json.dumps({"data": {key: name}, "media": name, "external_id": name}))
    path = folder / "items.jsonl"
    path.write_text("\n".join(rows) + "\n")
    return path


def http(world: Any) -> httpx.Client:
    return httpx.Client(transport=world.transport, base_url="http://testserver")


def urls_by_name(client: Any, project_id: int, key: str, n: int) -> dict[str, str]:
    tasks = client.next(project_id, n)
    assert len(tasks) == n
    return {t["data"][key]: t["media_url"] for t in tasks}


def fit_url(url: str, size: int = 320) -> str:
    """The resized image's URL (a path on this origin) of a media URL, by task or by sha."""
    return derived_url(url, f"fit/{size}")


def derived_url(url: str, suffix: str) -> str:
    """The URL of what is derived from a media URL's file (``fit/320``, ``audio/stream``)."""
    name, query = url.split("/media/")[1].split("?")
    return f"/media/{name}/{suffix}?{query}"


AUDIO_PARTS = ("audio", "audio/peaks/0", "audio/stream")


def assert_media_headers(r: httpx.Response) -> None:
    assert r.headers.get_list("x-content-type-options") == ["nosniff"]
    assert r.headers.get_list("content-security-policy") == [MEDIA_CSP]  # exactly one


def assert_never_runnable(r: httpx.Response) -> None:
    assert r.status_code in (200, 422), r.text
    if r.status_code == 200:
        kind = r.headers["content-type"]
        assert not kind.startswith(RUNNABLE) and "html" not in kind and "script" not in kind
        assert kind == "application/octet-stream"
        assert r.headers["content-disposition"].startswith("attachment")
        assert_media_headers(r)


def test_every_byte_serving_route_is_walked(app):
    """A new route answering with stored bytes must be added to the walk below."""
    media_paths = {path for _, path, _ in api_routes(app) if path.startswith("/media")}
    assert media_paths == MEDIA_ROUTES


def test_hostile_uploads_in_a_coco_zip_are_never_served_runnable(world):
    ws = world.workspace()
    manager = world.user("mia", role="manager", workspace=ws)
    project = world.project(ws)  # no image expected: anything else is kept as an attachment
    files = {**HOSTILE, **{name: content for name, (_, content) in GOOD.items()}}
    manager["client"].import_bytes(project.id, coco_zip(files), format="coco")
    urls = urls_by_name(manager["client"], project.id, "image", len(files))
    web = http(world)
    for name in HOSTILE:
        for url in (urls[name], fit_url(urls[name])):
            assert_never_runnable(web.get(url))
        assert web.get(fit_url(urls[name])).status_code == 422  # only checked images resize
    for name, (kind, content) in GOOD.items():
        r = web.get(urls[name])
        assert r.status_code == 200 and r.headers["content-type"] == kind
        assert r.headers["content-disposition"] == "inline" and r.content == content
        assert_media_headers(r)
        small = web.get(fit_url(urls[name]))
        assert small.status_code == 200 and small.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(small.content)).size == (320, 213)
        assert_media_headers(small)
        same = web.get(fit_url(urls[name], 1024))  # small enough: the original, same helper
        assert same.content == content and same.headers["content-type"] == kind
        assert_media_headers(same)


def test_hostile_media_of_a_jsonl_import_are_attachments(world, tmp_path, clock):
    ws = world.workspace()
    ann = world.user("ann", role="annotator", workspace=ws)
    project = world.project(ws)
    files = {**HOSTILE, "tone.wav": wav()}
    path = jsonl_with_media(tmp_path / "in", files)
    import_items(
        world.db,
        project,
        path,
        "jsonl",
        media=world.ctx.media,
        now=clock(),
        user_id=None,
        base_dir=path.parent,
    )
    urls = urls_by_name(ann["client"], project.id, "name", len(files))
    web = http(world)
    for name in HOSTILE:
        assert_never_runnable(web.get(urls[name]))
        assert_never_runnable(web.get(fit_url(urls[name])))
        for part in AUDIO_PARTS:  # only checked audio has facts, peaks and a listening copy
            assert web.get(derived_url(urls[name], part)).status_code == 422
    kinds = ("application/json", "application/octet-stream", "audio/ogg; codecs=opus")
    for part, kind in zip(AUDIO_PARTS, kinds, strict=True):
        r = web.get(derived_url(urls["tone.wav"], part))
        assert r.status_code == 200 and r.headers["content-type"] == kind, (part, r.text)
        if part != "audio":  # stored bytes; the facts are a JSON answer like the API's
            assert_media_headers(r)
    r = web.get(urls["tone.wav"])
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    assert r.headers["content-disposition"] == "inline"
    assert_media_headers(r)
    assert web.get(fit_url(urls["tone.wav"])).status_code == 422  # audio is not resized


@pytest.mark.parametrize("fmt", ["coco", "folder"])
def test_an_image_project_refuses_what_is_not_an_image(world, tmp_path, fmt):
    ws = world.workspace()
    manager = world.user("mia", role="manager", workspace=ws)
    project = world.project(ws, schema=IMAGE_SCHEMA)
    files = {"ok.png": png(), "looks.png": HTML, "x.svg": HOSTILE["x.svg"], "t.wav": wav()}
    if fmt == "coco":
        with pytest.raises(LabelfarmAPIError) as caught:
            manager["client"].import_bytes(project.id, coco_zip(files), format="coco")
        details = caught.value.details
    else:
        folder = tmp_path / "images"
        folder.mkdir()
        del files["x.svg"]  # a folder import refuses it by its suffix, before any check
        for name, content in files.items():
            (folder / name).write_bytes(content)
        with pytest.raises(ImportFailed) as failed:
            import_items(
                world.db, project, folder, "folder", media=world.ctx.media, now=0, user_id=None
            )
        details = failed.value.details
    refused = {d["location"]: d["reason"] for d in details if d["field"] == "media"}
    assert set(refused) >= {"looks.png", "t.wav"} and "ok.png" not in refused
    assert "expected image" in refused["looks.png"] and "HTML" in refused["looks.png"]
    assert "audio" in refused["t.wav"]
    if fmt == "coco":
        assert "SVG" in refused["x.svg"]
    with world.db.begin("read") as tx:  # all or nothing
        assert tx.execute(text("SELECT COUNT(*) FROM items")).scalar_one() == 0


def test_an_audio_project_refuses_what_is_not_audio(world, tmp_path):
    ws = world.workspace()
    project = world.project(ws, schema=AUDIO_SCHEMA)
    path = jsonl_with_media(tmp_path / "in", {"ok.wav": wav(), "x.html": HTML}, key="audio")
    with pytest.raises(ImportFailed) as failed:
        import_items(
            world.db,
            project,
            path,
            "jsonl",
            media=world.ctx.media,
            now=0,
            user_id=None,
            base_dir=path.parent,
        )
    assert [(d["location"], d["field"]) for d in failed.value.details] == [("x.html", "media")]


def test_decompression_bombs_are_refused_with_a_reason(world, tmp_path):
    bomb = tmp_path / "bomb.png"
    Image.new("1", (10_000, 10_000)).save(bomb)  # 100 M pixels, a few kB on disk
    verdict = check_file(bomb)
    assert verdict.hostile and not verdict.inline and "pixels" in verdict.reason
    ws = world.workspace()
    project = world.project(ws)  # even where no image is expected
    folder = tmp_path / "in"
    folder.mkdir()
    bomb.rename(folder / "bomb.png")
    with pytest.raises(ImportFailed) as failed:
        import_items(
            world.db, project, folder, "folder", media=world.ctx.media, now=0, user_id=None
        )
    (detail,) = failed.value.details
    assert detail["location"] == "bomb.png" and "pixels" in detail["reason"]


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [
        ("PNG", "image/png"),
        ("JPEG", "image/jpeg"),
        ("GIF", "image/gif"),
        ("WEBP", "image/webp"),
        ("BMP", "image/bmp"),
        ("TIFF", "image/tiff"),
    ],
)
def test_the_served_type_is_the_decoded_one(tmp_path, fmt, mime):
    path = tmp_path / "named.txt"  # the name says nothing; the content decides
    path.write_bytes(png((30, 20), fmt))
    verdict = check_file(path)
    assert (verdict.kind, verdict.mime) == ("image", mime)
    damaged = tmp_path / "damaged"
    damaged.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    assert not check_file(damaged).inline


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [("WAV", "audio/wav"), ("FLAC", "audio/flac"), ("OGG", "audio/ogg"), ("MP3", "audio/mpeg")],
)
def test_audio_is_decoded_to_be_inline(tmp_path, fmt, mime):
    path = tmp_path / "sound.bin"
    tone = (np.sin(np.arange(16_000) / 5) * 8000).astype(np.int16)
    soundfile.write(path, tone, 16_000, format=fmt)
    assert (check_file(path).kind, check_file(path).mime) == ("audio", mime)
    soundfile.write(tmp_path / "x.aiff", tone, 16_000, format="AIFF")
    assert not check_file(tmp_path / "x.aiff").inline  # decodable, not a type served inline


def test_svg_is_never_inline_even_when_checked(tmp_path):
    path = tmp_path / "x.svg"
    path.write_bytes(HOSTILE["x.svg"])
    verdict = check_file(path)
    assert not verdict.inline and verdict.mime == "application/octet-stream"
    assert "SVG" in verdict.reason


def test_the_migration_leaves_stored_files_unchecked(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    migrate(db, "0007")
    with db.engine.begin() as conn:  # a row as the code before checks stored it
        conn.execute(
            text(
                "INSERT INTO media (sha256, size, mime, created_at) VALUES (:s, 10, 'text/html', 0)"
            ),
            {"s": "a" * 64},
        )
    migrate(db)
    with db.engine.connect() as conn:
        row = conn.execute(text("SELECT mime, inline, checked_at FROM media")).one()
    db.dispose()
    assert (bool(row.inline), row.checked_at) == (False, None)


def run_check(
    how: str, world: Any, settings: Settings, monkeypatch: Any, clock: Any, run_async: Any
) -> None:
    """Check the unchecked files as an operator would (``labelfarm media check``), as the
    server does when it starts, or by calling the workflow."""
    if how == "cli":
        monkeypatch.setenv("LABELFARM_DATABASE_URL", settings.database_url)
        monkeypatch.setenv("LABELFARM_DATA_DIR", str(settings.data_dir))
        monkeypatch.setenv("LABELFARM_SECRET_KEY", settings.secret_key)
        result = CliRunner().invoke(cli_app, ["media", "check"])
        assert result.exit_code == 0, result.output
        assert "checked 2 files: 1 inline, 1 attachments" in result.output
    elif how == "server":
        run_async(check_unchecked_media(world.ctx))
    else:
        report = world.db.run(check_media, world.ctx.media, now=clock())
        assert (report.checked, report.inline, report.attachment) == (2, 1, 1)


@pytest.mark.parametrize("how", ["workflow", "cli", "server"])
def test_legacy_media_is_an_attachment_until_checked(
    world, tmp_path, clock, settings, monkeypatch, how, run_async
):
    """A file stored before checks existed (as the old code stored it: a type guessed from
    the name, no check) is served as an attachment until check_media has decoded it."""
    ws = world.workspace()
    ann = world.user("ann", role="annotator", workspace=ws)
    project = world.project(ws)
    files = {"old.png": png(), "old.html": HTML}
    path = jsonl_with_media(tmp_path / "in", files)
    import_items(
        world.db,
        project,
        path,
        "jsonl",
        media=world.ctx.media,
        now=clock(),
        user_id=None,
        base_dir=path.parent,
    )
    with world.db.begin("write") as tx:  # what the migration leaves: every row unchecked
        tx.execute(
            text(
                "UPDATE media SET checked_at = NULL, inline = false, mime = CASE "
                "WHEN mime = 'image/png' THEN 'image/png' ELSE 'text/html' END"
            )
        )
    urls = urls_by_name(ann["client"], project.id, "name", 2)
    web = http(world)
    for url in urls.values():
        assert_never_runnable(web.get(url))
    assert web.get(fit_url(urls["old.png"])).status_code == 422
    run_check(how, world, settings, monkeypatch, clock, run_async)
    r = web.get(urls["old.png"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert web.get(fit_url(urls["old.png"])).status_code == 200
    assert_never_runnable(web.get(urls["old.html"]))
    assert world.db.run(check_media, world.ctx.media, now=clock()).checked == 0  # done once


# -- media URLs are tied to what grants them ---------------------------------------------
def _image_project(world: Any, tmp_path: Path, n: int = 3, **settings: Any) -> Any:
    ws = world.workspace()
    project = world.project(ws, schema=IMAGE_SCHEMA, **settings)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(n):
        (folder / f"{i}.png").write_bytes(png((40 + i, 30)))
    import_items(world.db, project, folder, "folder", media=world.ctx.media, now=0, user_id=None)
    return ws, project


def test_an_annotators_media_url_ends_with_the_lease(world, tmp_path, clock):
    ws, project = _image_project(world, tmp_path, lease_seconds=600)
    ann = world.user("ann", role="annotator", workspace=ws)
    web = http(world)
    done, skipped, kept = ann["client"].next(project.id, 3)
    for task in (done, skipped, kept):
        assert web.get(task["media_url"]).status_code == 200
        assert web.get(fit_url(task["media_url"])).status_code == 200
    ann["client"].submit(project.id, [{"task": done["task"], "value": BOXES}])
    ann["client"].skip(project.id, skipped["task"], "unclear")
    for task in (done, skipped):  # well before the URL's expiry
        assert web.get(task["media_url"]).status_code == 403
        assert web.get(fit_url(task["media_url"])).status_code == 403
    assert web.get(kept["media_url"]).status_code == 200
    clock.advance(601)  # the lease expires (no one has reclaimed it yet)
    assert web.get(kept["media_url"]).status_code == 403


def test_media_url_ends_when_the_user_is_deactivated_or_removed(world, tmp_path, clock):
    ws, project = _image_project(world, tmp_path)
    ann = world.user("ann", role="annotator", workspace=ws)
    bob = world.user("bob", role="annotator", workspace=ws)
    web = http(world)
    (a_task,) = ann["client"].next(project.id, 1)
    (b_task,) = bob["client"].next(project.id, 1)
    assert web.get(a_task["media_url"]).status_code == 200
    with world.db.begin("write") as tx:
        tx.execute(text("UPDATE users SET is_active = false WHERE id = :u"), {"u": ann["id"]})
    assert web.get(a_task["media_url"]).status_code == 403
    admin = world.user("root", superuser=True)
    admin["client"].request("DELETE", f"/workspaces/{ws['id']}/members/{bob['id']}")
    assert web.get(b_task["media_url"]).status_code == 403


def test_checked_out_media_works_for_the_checkouts_life(world, tmp_path, clock):
    ws, project = _image_project(world, tmp_path, lease_seconds=60)
    ann = world.user("ann", role="annotator", workspace=ws)
    r = ann["client"].request("POST", f"/projects/{project.id}/checkout", json={"n": 2, "hours": 2})
    web = http(world)
    clock.advance(3600 + 60)  # longer than the project's lease and MEDIA_URL_SECONDS
    for task in r["tasks"]:
        assert web.get(task["media_url"]).status_code == 200
    clock.advance(3600)
    for task in r["tasks"]:
        assert web.get(task["media_url"]).status_code == 403


def test_reviewers_and_managers_keep_access_by_role(world, tmp_path, clock):
    ws, project = _image_project(world, tmp_path, n=1)
    ann = world.user("ann", role="annotator", workspace=ws)
    rev = world.user("rev", role="reviewer", workspace=ws)
    (task,) = ann["client"].next(project.id, 1)
    ann["client"].submit(project.id, [{"task": task["task"], "value": BOXES}])
    (item,) = world.item_ids(project.id, ann, [task])
    url = rev["client"].request("GET", f"/projects/{project.id}/review/{item}")["item"]["media_url"]
    web = http(world)
    assert web.get(task["media_url"]).status_code == 403  # the annotator's lease is over
    assert web.get(url).status_code == 200 and web.get(fit_url(url)).status_code == 200
    for _ in range(5):
        assert web.get(fit_url(url)).status_code == 200
    # views by role are audited in aggregate: one row per user and day, not one per view
    before = world.db.run(audit.entries, limit=1000)
    world.ctx.tally.flush(world.db, clock() + 2 * 86_400, everything=True)
    rows = [e for e in world.db.run(audit.entries, limit=1000) if e not in before]
    assert [
        (e["action"], e["actor_id"], e["workspace_id"], e["details"]["count"]) for e in rows
    ] == [("media.view", rev["id"], ws["id"], 7)]
    # the grant is the role: demoted to annotator, the URL ends at once
    with world.db.begin("write") as tx:
        tx.execute(
            text("UPDATE memberships SET role = 'annotator' WHERE user_id = :u"), {"u": rev["id"]}
        )
    assert web.get(url).status_code == 403
    # a URL cannot be moved to another grant: the signature covers it
    signed = {k: v[0] for k, v in parse_qs(urlsplit(task["media_url"]).query).items()}
    sha = urlsplit(url).path.split("/")[2]
    forged = f"/media/{sha}?{urlencode({**signed, 'workspace': ws['id']})}"
    assert web.get(forged).status_code == 403


@pytest.fixture
def media_origin() -> str:
    return ""


@pytest.fixture
def media_root() -> str:
    return ""


@pytest.fixture
def settings(settings: Settings, media_origin: str, media_root: str) -> Settings:
    return settings.model_copy(update={"media_origin": media_origin, "media_root": media_root})


@pytest.mark.parametrize("media_origin", ["https://media.example.org"])
def test_media_origin_signs_absolute_urls_and_widens_the_page_csp(world, tmp_path):
    ws, project = _image_project(world, tmp_path, n=1)
    ann = world.user("ann", role="annotator", workspace=ws)
    (task,) = ann["client"].next(project.id, 1)
    url = task["media_url"]
    assert url.startswith("https://media.example.org/media/")
    web = http(world)
    csp = web.get("/healthz").headers["content-security-policy"]
    assert "img-src 'self' data: blob: https://media.example.org;" in csp
    assert "media-src 'self' blob: https://media.example.org;" in csp
    assert "connect-src 'self' https://media.example.org;" in csp
    r = web.get(url)  # on the media host
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers.get_list("content-security-policy") == [MEDIA_CSP]
    path = url.removeprefix("https://media.example.org")
    assert web.get(path).status_code == 404  # never on the app's own origin


@pytest.mark.parametrize("media_root", [f"memory://labelfarm-{uuid.uuid4().hex[:8]}"])
def test_a_remote_store_is_served_and_checked_the_same_way(world, tmp_path, clock):
    assert not world.ctx.media.is_local
    ws = world.workspace()
    ann = world.user("ann", role="annotator", workspace=ws)
    project = world.project(ws)
    content = png((50, 40))
    path = jsonl_with_media(tmp_path / "in", {"p.png": content, "x.html": HTML})
    import_items(
        world.db,
        project,
        path,
        "jsonl",
        media=world.ctx.media,
        now=0,
        user_id=None,
        base_dir=path.parent,
    )
    urls = urls_by_name(ann["client"], project.id, "name", 2)
    web = http(world)
    r = web.get(urls["p.png"])
    assert r.headers["content-type"] == "image/png" and r.content == content
    assert_media_headers(r)
    assert_never_runnable(web.get(urls["x.html"]))
    with world.db.begin("write") as tx:
        tx.execute(text("UPDATE media SET checked_at = NULL, inline = false"))
    assert web.get(urls["p.png"]).headers["content-type"] == "application/octet-stream"
    report = world.db.run(check_media, world.ctx.media, now=clock())
    assert (report.checked, report.inline) == (2, 1)
    assert web.get(urls["p.png"]).headers["content-type"] == "image/png"
