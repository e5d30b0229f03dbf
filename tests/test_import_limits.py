"""Hostile imports cost at most their limits: zip bombs, huge lines and documents, very
wide tables and oversized bodies are refused while streaming, before anything is stored;
bad bytes are located on their own line; a server asked to stop during an import exits
at once and leaves nothing of it."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import httpx
import orjson
import pytest
from anyio.from_thread import start_blocking_portal
from PIL import Image
from sqlalchemy import text

from labelfarm.client import AppTransport, Client, LabelfarmAPIError
from labelfarm.errors import ImportFailed
from labelfarm.formats import archive
from labelfarm.formats.registry import ImportLimits
from labelfarm.services.imports import import_items, recover_imports
from labelfarm.web.app import create_app

TEXT = {"fields": [{"name": "label", "type": "choice", "options": ["a", "b"]}]}
BOXES = {"fields": [{"name": "boxes", "type": "bbox", "labels": ["cat"], "required": False}]}
MiB = 1 << 20


@pytest.fixture
def manager(world):
    ws = world.workspace()
    return ws, world.user("boss", role="manager", workspace=ws)


def _import(world, project, path: Path, fmt: str, **kwargs):
    return world.db.run(
        import_items,
        project,
        path,
        fmt,
        media=world.ctx.media,
        now=world.clock(),
        user_id=None,
        **kwargs,
    )


def _n_items(world) -> int:
    with world.db.begin("read") as tx:
        return tx.execute(text("SELECT COUNT(*) FROM items")).scalar_one()


def _written() -> int:
    """Bytes this process has written so far (to any file, tmpfs included)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar in /proc/self/io")


# -- zip archives ---------------------------------------------------------------------------
def _bomb(path: Path) -> Path:
    """2,048 entries of 1 MiB of zeros: 2 GiB from a 2.3 MB file, each entry far below any
    per-entry floor. (The one compressed entry is written 2,048 times: compressing 2 GiB of
    zeros would take the test seconds.)"""
    zero = bytes(MiB)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = deflate.compress(zero) + deflate.flush()
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("instances.json", '{"images": [], "annotations": [], "categories": []}')
        for i in range(2048):
            info = zipfile.ZipInfo(f"images/{i:05d}.jpg", date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.CRC, info.compress_size, info.file_size = zlib.crc32(zero), len(payload), MiB
            info.header_offset = zf.fp.tell()
            zf.fp.write(info.FileHeader(False) + payload)
            zf.filelist.append(info)
            zf.NameToInfo[info.filename] = info
            zf.start_dir = zf.fp.tell()
    return path


def test_a_zip_bomb_of_small_entries_is_caught_by_the_whole_archives_ratio(tmp_path):
    bomb = _bomb(tmp_path / "bomb.zip")
    assert bomb.stat().st_size < 3_000_000
    dest = tmp_path / "unpacked"
    started = time.perf_counter()
    with pytest.raises(archive.ArchiveError) as err:
        archive.extract(bomb, dest)
    written = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
    assert written < 100 * MiB, f"{written / MiB:.0f} MiB unpacked before the bomb was caught"
    assert time.perf_counter() - started < 10
    assert "zip bomb" in err.value.problems[0].reason


def test_a_zip_bomb_upload_is_refused_before_it_fills_the_disk(world, manager, tmp_path):
    ws, boss = manager
    project = world.project(ws, schema=BOXES)
    bomb = _bomb(tmp_path / "bomb.zip").read_bytes()
    before = _written()
    with pytest.raises(LabelfarmAPIError) as err:
        boss["client"].import_bytes(project.id, bomb, format="coco", filename="bomb.zip")
    assert err.value.status == 422
    assert "zip bomb" in err.value.details[0]["reason"]
    assert _written() - before < 100 * MiB
    assert _n_items(world) == 0


def _photos_zip(path: Path, n: int, *, padding: int = 0) -> Path:
    """A COCO archive of ``n`` noise photos (~0.75 MiB each as PNG: they barely compress)
    and ``padding`` blanks in its JSON (which compress about 1000x)."""
    images = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(n):
            buf = io.BytesIO()
            Image.frombytes("RGB", (512, 512), os.urandom(512 * 512 * 3)).save(buf, "PNG")
            zf.writestr(f"images/{i}.png", buf.getvalue())
            images.append({"id": i, "file_name": f"{i}.png", "width": 512, "height": 512})
        doc = orjson.dumps({"images": images, "annotations": [], "categories": []})
        zf.writestr("instances.json", doc[:-1] + b" " * padding + b"}")
    return path


def test_an_archive_of_photos_larger_than_the_floor_still_imports(world, manager, tmp_path):
    ws, boss = manager
    project = world.project(ws, schema=BOXES)
    photos = _photos_zip(tmp_path / "photos.zip", 40)  # ~30 MiB unpacked, past the floor
    result = boss["client"].import_file(project.id, photos, format="coco")
    assert result["n_items"] == 40


def test_a_small_archive_of_text_that_compresses_well_imports(world, manager, tmp_path):
    ws, boss = manager
    project = world.project(ws, schema=BOXES)
    text_zip = _photos_zip(tmp_path / "text.zip", 1, padding=12 * MiB)  # ~500x, under 16 MiB
    assert text_zip.stat().st_size < MiB
    result = boss["client"].import_file(project.id, text_zip, format="coco")
    assert result["n_items"] == 1


def test_the_total_unpacked_size_is_capped(tmp_path):
    photos = _photos_zip(tmp_path / "photos.zip", 20)
    with pytest.raises(archive.ArchiveError) as err:
        archive.extract(photos, tmp_path / "out", limits=ImportLimits(archive_bytes=8 * MiB))
    assert "in all" in err.value.problems[0].reason


# -- one huge item, streamed ------------------------------------------------------------------
def _huge(path: Path, fmt: str, size: int) -> Path:
    """One item of ``size`` bytes, in a file of format ``fmt``."""
    blob = b"x" * MiB
    head, tail = {
        "jsonl": (b'{"data": {"text": "', b'"}}\n{"data": {"text": "fine"}}\n'),
        "labelstudio": (b'[{"data": {"text": "', b'"}}]\n'),
        "coco": (b'{"categories": [], "images": [{"id": 1, "file_name": "', b'"}]}\n'),
    }[fmt]
    with open(path, "wb") as fh:
        fh.write(head)
        for _ in range(size // MiB):
            fh.write(blob)
        fh.write(tail)
    return path


@pytest.mark.parametrize(
    ("fmt", "size"), [("jsonl", 200 * MiB), ("labelstudio", 64 * MiB), ("coco", 64 * MiB)]
)
def test_one_huge_item_is_refused_while_streaming_with_bounded_memory(
    world, manager, tmp_path, fmt, size
):
    ws, _ = manager
    project = world.project(ws, schema=TEXT if fmt != "coco" else BOXES)
    path = _huge(tmp_path / ("huge.jsonl" if fmt == "jsonl" else "huge.json"), fmt, size)
    tracemalloc.start()
    try:
        with pytest.raises(ImportFailed) as err:
            _import(world, project, path, fmt)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 * MiB, f"peak {peak / MiB:.0f} MiB to refuse a {size / MiB:.0f} MiB item"
    first = err.value.details[0]
    assert "line 1" in first["location"] and "larger than 1 MiB" in first["reason"]
    assert _n_items(world) == 0


def test_a_long_jsonl_line_is_reported_and_reading_goes_on(world, manager, tmp_path):
    ws, _ = manager
    project = world.project(ws, schema=TEXT)
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        b'{"data": {"text": "' + b"y" * (2 * MiB) + b'"}}\n'
        b'{"data": {"text": "ok"}}\n'
        b'{"data": "not an object"}\n'
    )
    with pytest.raises(ImportFailed) as err:
        _import(world, project, path, "jsonl")
    assert [d["location"] for d in err.value.details] == ["line 1", "line 3"]


def test_the_stored_data_is_bounded_whatever_the_file_looked_like(world, manager, tmp_path):
    ws, _ = manager
    project = world.project(ws, schema=TEXT)
    path = tmp_path / "controls.csv"  # a 0.6 MiB cell of control characters: 3.6 MiB of JSON
    path.write_bytes(b"text\n" + b"\x01" * (600 * 1024) + b"\n")
    with pytest.raises(ImportFailed) as err:
        _import(world, project, path, "csv")
    detail = err.value.details[0]
    assert (detail["location"], detail["field"]) == ("line 2", "data")
    assert "the largest item" in detail["reason"]


# -- wide tables ------------------------------------------------------------------------------
def _wide(path: Path, n: int, *, dupe: str | None = None) -> Path:
    names = [f"c{i}" for i in range(n)]
    if dupe:
        names[-1] = dupe
    path.write_text(",".join(names) + "\n" + ",".join("1" for _ in names) + "\n")
    return path


def test_a_csv_with_a_million_columns_is_refused_at_once(world, manager, tmp_path):
    ws, _ = manager
    project = world.project(ws, schema=TEXT)
    path = _wide(tmp_path / "wide.csv", 10**6)
    started = time.perf_counter()
    with pytest.raises(ImportFailed) as err:
        _import(world, project, path, "csv")
    assert time.perf_counter() - started < 5
    assert err.value.details[0]["location"] == "line 1"


def test_the_column_limit_and_a_linear_duplicate_check(world, manager, tmp_path):
    ws, _ = manager
    project = world.project(ws, schema=TEXT)
    with pytest.raises(ImportFailed) as err:
        _import(world, project, _wide(tmp_path / "a.csv", 1001), "csv")
    assert err.value.details[0]["reason"] == "1001 columns; at most 1000"
    # allowed a million columns, the duplicate check takes a moment, not minutes
    roomy = ImportLimits(item_bytes=64 * MiB, columns=2 * 10**6)
    path = _wide(tmp_path / "b.csv", 10**6, dupe="c5")
    started = time.perf_counter()
    with pytest.raises(ImportFailed) as err:
        _import(world, project, path, "csv", limits=roomy)
    assert time.perf_counter() - started < 10
    assert err.value.details[0]["reason"] == "duplicate columns ['c5']"


# -- bad bytes on their own line ----------------------------------------------------------------
BAD_UTF8 = {
    "jsonl": (
        b'{"data": {"text": "a"}}\n{"data": {"text": "b"}}\n{"data": {"text": "\xff"}}\n',
        67,
    ),
    "csv": (b"text\nhello\nwor\xffld\n", 14),
    "labelstudio": (
        b'[{"data": {"text": "a"}},\n{"data": {"text": "b"}},\n{"data": {"text": "\xff"}}]\n',
        70,
    ),
}


@pytest.mark.parametrize("fmt", sorted(BAD_UTF8))
def test_bytes_that_are_not_utf8_are_reported_on_their_own_line(world, manager, tmp_path, fmt):
    ws, _ = manager
    project = world.project(ws, schema=TEXT)
    content, offset = BAD_UTF8[fmt]
    assert content.index(b"\xff") == offset
    path = tmp_path / f"bad.{fmt}"
    path.write_bytes(content)
    with pytest.raises(ImportFailed) as err:
        _import(world, project, path, fmt)
    detail = err.value.details[0]
    assert detail["location"].endswith("line 3"), detail
    assert f"not UTF-8 (byte {offset})" in detail["reason"]


# -- request bodies -----------------------------------------------------------------------------
@pytest.fixture
def small_limits(settings, clock):
    """The app with an upload limit of 1 MiB and a request limit of 64 KiB, and a transport
    to it."""
    tight = settings.model_copy(update={"max_upload_bytes": MiB, "max_request_bytes": 64 << 10})
    app = create_app(tight, clock=clock, run_migrations=False)
    transport = AppTransport(app)
    yield app, transport
    transport.close()
    app.state.ctx.db.dispose()


def _post_stream(app, url: str, token: str, chunks: int, size: int) -> tuple[int, dict, int]:
    """POST ``chunks`` chunks of ``size`` bytes without a Content-Length (chunked): the
    status, the body, and how many chunks the server pulled before it answered."""
    sent = 0

    async def body():
        nonlocal sent
        for _ in range(chunks):
            sent += 1
            yield b"x" * size

    async def run():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            r = await http.post(url, content=body(), headers={"Authorization": f"Bearer {token}"})
            return r.status_code, r.json()

    with start_blocking_portal() as portal:
        status, answer = portal.call(run)
    return status, answer, sent


def test_an_upload_is_refused_as_soon_as_it_crosses_the_limit(world, manager, small_limits):
    ws, boss = manager
    project = world.project(ws, schema=TEXT)
    app, transport = small_limits
    client = Client("http://t", token=boss["token"], transport=transport)
    with pytest.raises(LabelfarmAPIError) as err:  # declared: refused before reading it
        client.import_bytes(project.id, b'{"data": {"text": "a"}}\n' * 100_000, format="jsonl")
    assert (err.value.status, err.value.code) == (413, "too_large")
    url = f"/api/v1/projects/{project.id}/imports?format=jsonl"
    status, answer, pulled = _post_stream(app, url, boss["token"], 100, 64 << 10)
    assert status == 413 and answer["error"]["code"] == "too_large"
    assert pulled <= 20, f"{pulled} of 100 chunks read before refusing"
    small = client.import_bytes(project.id, b'{"data": {"text": "a"}}\n' * 1000, format="jsonl")
    assert small["n_items"] == 1000
    assert _n_items(world) == 1000


def test_json_bodies_are_bounded_too(world, manager, small_limits, tmp_path):
    ws, _ = manager
    project = world.project(ws, schema=TEXT)
    world.add_items(project, 3, tmp_path)
    ann = world.user("anbu", role="annotator", workspace=ws)
    app, transport = small_limits
    client = Client("http://t", token=ann["token"], transport=transport)
    entry = {"id": "x", "task": "t" * 32, "value": {"label": "a"}}
    with pytest.raises(LabelfarmAPIError) as err:
        client.request(
            "POST", f"/projects/{project.id}/submit", json={"annotations": [entry] * 5000}
        )
    assert (err.value.status, err.value.code) == (413, "too_large")
    url = f"/api/v1/projects/{project.id}/next"
    status, answer, pulled = _post_stream(app, url, ann["token"], 50, 16 << 10)
    assert status == 413 and answer["error"]["code"] == "too_large" and pulled <= 6
    assert len(client.request("POST", f"/projects/{project.id}/next", json={"n": 1})["tasks"]) == 1


# -- stopping the server during an import ------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(settings, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "LABELFARM_DATA_DIR": str(settings.data_dir),
        "LABELFARM_DATABASE_URL": settings.resolved_database_url,
        "LABELFARM_SECRET_KEY": settings.secret_key,
        "LABELFARM_PORT": str(port),
        "LABELFARM_REFIT_SECONDS": "0",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "labelfarm.cli", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise AssertionError(f"the server did not start: {server.stderr.read().decode()[-2000:]}")


def _import_status(world) -> tuple[str | None, int]:
    with world.db.begin("read") as tx:
        status = tx.execute(text("SELECT status FROM imports ORDER BY id DESC LIMIT 1")).scalar()
        staged = tx.execute(text("SELECT COUNT(*) FROM items")).scalar_one()
    return status, staged


def test_sigterm_during_a_long_import_stops_the_server_at_once(world, manager, settings, tmp_path):
    ws, boss = manager
    project = world.project(ws, schema=TEXT)
    path = tmp_path / "long.jsonl"  # some 20 s of importing on this machine
    with open(path, "wb") as fh:
        for i in range(400_000):
            fh.write(b'{"data": {"text": "item %d %s"}}\n' % (i, b"y" * 200))
    port = _free_port()
    server = _serve(settings, port)
    answer: dict = {}

    def upload() -> None:
        try:
            with path.open("rb") as fh:
                r = httpx.post(
                    f"http://127.0.0.1:{port}/api/v1/projects/{project.id}/imports",
                    params={"format": "jsonl"},
                    content=fh,
                    headers={"Authorization": f"Bearer {boss['token']}"},
                    timeout=120,
                )
            answer["status"] = r.status_code
        except httpx.TransportError as exc:
            answer["error"] = exc

    uploader = threading.Thread(target=upload, daemon=True)
    try:
        uploader.start()
        deadline = time.monotonic() + 60
        while _import_status(world)[0] != "staging" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _import_status(world)[0] == "staging"
        time.sleep(2)  # rows are being read and stored
        assert server.poll() is None
        stopped = time.monotonic()
        server.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=30)
        took = time.monotonic() - stopped
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert took < 5, f"the server took {took:.1f} s to stop"
    uploader.join(10)
    assert answer.get("status") in (503, None), answer
    with world.db.begin("read") as tx:  # nothing of the import is visible…
        ready = tx.execute(text("SELECT COUNT(*) FROM items WHERE status = 'ready'")).scalar()
        n_items = tx.execute(text("SELECT n_items FROM projects")).scalar_one()
    assert (ready, n_items) == (0, 0)
    world.db.run(recover_imports, world.clock())  # …and the next start clears what was staged
    assert _import_status(world) == ("failed", 0)
