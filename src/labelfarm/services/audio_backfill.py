"""Audio facts for files stored before they were derived at import.

An import derives each audio file's facts, peaks and listening copy as it stores it
(:mod:`labelfarm.services.audio_media`). Audio stored earlier has none, and its audio routes
answer 404 until :func:`derive_missing_audio` has derived them: a batch of files at a time,
each decoded outside any transaction, their rows written in a short one. Safe to run again,
or in several processes (a row written twice is kept once).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict, dataclass
from typing import NamedTuple

from labelfarm.db.engine import Database
from labelfarm.db.tx import Sql, workflow
from labelfarm.ml.audio import AudioError
from labelfarm.services.audio_media import AudioFacts, derive_audio, register_audio
from labelfarm.services.media import MediaStore


class Underived(NamedTuple):
    sha256: str


UNDERIVED = Sql(
    "SELECT m.sha256 FROM media m LEFT JOIN media_audio a ON a.sha256 = m.sha256 "
    "WHERE a.sha256 IS NULL AND m.inline AND m.mime LIKE 'audio/%' AND m.sha256 > :after "
    "ORDER BY m.sha256 LIMIT :n",
    row=Underived,
)


@dataclass
class BackfillReport:
    derived: int = 0
    failed: int = 0  # audio that does not decode to its end (its routes keep answering 404)
    missing: int = 0  # the file is not in the store

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def _derive_stored(media: MediaStore, sha: str) -> AudioFacts:
    """Derive a stored file's facts (a remote store's copied to a temporary file first)."""
    local = media.local_path(sha)
    if local is not None:
        return derive_audio(media, sha, local)
    with tempfile.NamedTemporaryFile(prefix="labelfarm-audio-") as tmp:
        with media.open(sha) as fh:
            shutil.copyfileobj(fh, tmp, 1 << 20)
        tmp.flush()
        return derive_audio(media, sha, tmp.name)


@workflow
def derive_missing_audio(
    db: Database, media: MediaStore, *, now: float, batch: int = 20
) -> BackfillReport:
    """Derive the facts of every stored audio file that has none yet."""
    report, after = BackfillReport(), ""
    while True:
        with db.begin("read") as tx:
            rows = tx.rows(UNDERIVED, {"after": after, "n": batch})
        if not rows:
            return report
        found = []
        for (sha,) in rows:
            if not media.exists(sha):
                report.missing += 1
                continue
            try:
                found.append(_derive_stored(media, sha))
            except AudioError:
                report.failed += 1
        if found:
            with db.begin("write") as tx:
                register_audio(tx, found, now)
        report.derived += len(found)
        after = rows[-1].sha256
