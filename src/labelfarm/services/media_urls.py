"""Media named by URL in an imported file, fetched by the server, and audio derived at import.

An item of a JSON Lines file may name its media by an ``http://`` or ``https://`` URL. The
server fetches it only from the hosts of the ``audio_url_hosts`` setting (empty: never),
following redirects only to those hosts, with a connect and a read timeout, and at most
``audio_url_max_bytes`` bytes; the fetched file is then checked and stored like a file of
the import (:func:`labelfarm.services.import_staging.store_media`). A batch's fetched files
live in a scratch folder until they are stored.

:func:`derive_new_audio` derives the facts, peaks and listening copy of each audio file of a
batch not derived before (:mod:`labelfarm.services.audio_media`), a few files at a time.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from labelfarm.db.engine import Database
from labelfarm.errors import ImportFailed
from labelfarm.formats import ItemRecord
from labelfarm.formats.registry import ImportLimits
from labelfarm.ml.audio import AudioError
from labelfarm.services.audio_media import AudioFacts, derive_audio, derived_already, file_sha256
from labelfarm.services.media import MediaStore
from labelfarm.services.media_check import Verdict

SETTING = "audio_url_hosts"
MAX_REDIRECTS = 5
TIMEOUT = httpx.Timeout(60.0, connect=10.0)  # seconds: connecting, then between two reads
_FETCHES = ThreadPoolExecutor(4, thread_name_prefix="labelfarm-fetch")


class FetchRefused(Exception):
    """Why a URL's file was not fetched."""


def host_allowed(url: str, hosts: tuple[str, ...]) -> bool:
    """Whether ``url`` is http(s) on one of ``hosts`` (host names, any port)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme in ("http", "https") and bool(host) and host in {h.lower() for h in hosts}


def fetch_url(client: httpx.Client, url: str, dest: Path, limits: ImportLimits) -> None:
    """Fetch ``url`` into ``dest``: redirects followed only to allowed hosts, at most
    ``limits.audio_url_max_bytes`` bytes. Raises :class:`FetchRefused` saying why not."""
    cap = limits.audio_url_max_bytes
    for _ in range(MAX_REDIRECTS + 1):
        if not host_allowed(url, limits.audio_url_hosts):
            raise FetchRefused(f"{urlsplit(url).hostname!r} is not a host of {SETTING}")
        try:
            with client.stream("GET", url) as response:
                if response.is_redirect:
                    url = urljoin(url, response.headers.get("location", ""))
                    continue
                if response.status_code != 200:
                    raise FetchRefused(f"the server answered {response.status_code}")
                length = response.headers.get("content-length", "")
                if length.isdigit() and int(length) > cap:
                    raise FetchRefused(f"{int(length):,} bytes; audio_url_max_bytes is {cap:,}")
                n = 0
                with open(dest, "wb") as out:
                    for chunk in response.iter_bytes(1 << 20):
                        n += len(chunk)
                        if n > cap:
                            raise FetchRefused(f"more than audio_url_max_bytes ({cap:,} bytes)")
                        out.write(chunk)
                if n == 0:
                    raise FetchRefused("the server sent no bytes")
                return
        except httpx.HTTPError as exc:
            raise FetchRefused(f"could not fetch it: {exc}") from None
    raise FetchRefused(f"more than {MAX_REDIRECTS} redirects")


@contextlib.contextmanager
def fetched_media(
    batch: list[ItemRecord], limits: ImportLimits | None
) -> Iterator[dict[Path, str]]:
    """Fetch the media of the batch's records named by URL into a scratch folder (each
    record's ``media_path`` set to its copy), for the duration of the block. Yields where
    each fetched file came from (its URL), by path. Raises :class:`ImportFailed` naming every
    URL that could not be fetched."""
    urls = list(dict.fromkeys(rec.media_url for rec in batch if rec.media_url is not None))
    if not urls:
        yield {}
        return
    policy = limits or ImportLimits()
    with (
        tempfile.TemporaryDirectory(prefix="labelfarm-fetch-") as scratch,
        httpx.Client(timeout=TIMEOUT, follow_redirects=False) as client,
    ):
        paths = {url: Path(scratch) / f"{i}" for i, url in enumerate(urls)}

        def one(url: str) -> str | None:
            try:
                fetch_url(client, url, paths[url], policy)
            except FetchRefused as exc:
                return str(exc)
            return None

        problems = [
            {"location": url, "field": "media", "reason": reason}
            for url, reason in zip(urls, _FETCHES.map(one, urls), strict=True)
            if reason is not None
        ]
        if problems:
            raise ImportFailed(f"{len(problems)} media URL(s) not fetched", problems)
        for rec in batch:
            if rec.media_url is not None:
                rec.media_path = paths[rec.media_url]
        yield {path: url for url, path in paths.items()}


def derive_new_audio(
    store: MediaStore,
    db: Database | None,
    verdicts: dict[Path, Verdict],
    where: dict[Path, str],
    pool: Executor,
) -> list[AudioFacts]:
    """The facts of each audio file among ``verdicts`` not derived before (once per sha),
    derived on ``pool``. Raises :class:`ImportFailed` naming every file that does not decode
    to its end (located by ``where``, else its name)."""
    audio = [path for path, verdict in verdicts.items() if verdict.kind == "audio"]
    if not audio:
        return []
    by_sha = dict(zip(pool.map(file_sha256, audio), audio, strict=True))
    if db is not None:
        with db.begin("read") as tx:
            for sha in derived_already(tx, by_sha):
                del by_sha[sha]

    def one(item: tuple[str, Path]) -> AudioFacts | str:
        try:
            return derive_audio(store, *item)
        except AudioError as exc:
            return str(exc)

    results = list(pool.map(one, by_sha.items()))
    problems: list[dict[str, Any]] = [
        {"location": where.get(path, path.name), "field": "media", "reason": result}
        for path, result in zip(by_sha.values(), results, strict=True)
        if isinstance(result, str)
    ]
    if problems:
        raise ImportFailed(f"{len(problems)} audio file(s) refused", problems)
    return [r for r in results if isinstance(r, AudioFacts)]
