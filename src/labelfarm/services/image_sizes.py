"""Every image's size, for items imported before sizes were stored at import.

An import stores the size of each item's image as it decodes it
(:func:`labelfarm.services.import_staging.image_size`); exports to tools that place regions in
percentages of the image (Label Studio) need it. Items imported earlier get theirs here, from
their stored media, a batch of files at a time: read outside any transaction (only the
header: Pillow gives the size without decoding the pixels), written in a short one. Run by
``labelfarm media check`` and by the server at start; safe to run again.
"""

from __future__ import annotations

import shutil
import tempfile
from typing import TYPE_CHECKING, NamedTuple

from PIL import Image, UnidentifiedImageError

from labelfarm.db.engine import Database
from labelfarm.db.tx import Sql, workflow
from labelfarm.services.media_check import PILLOW_FORMATS

if TYPE_CHECKING:
    from labelfarm.services.media import MediaStore


class Unsized(NamedTuple):
    sha256: str


UNSIZED = Sql(
    "SELECT DISTINCT i.media_sha256 FROM items i JOIN media m ON m.sha256 = i.media_sha256 "
    "WHERE i.image_width IS NULL AND m.inline AND m.mime LIKE 'image/%' "
    "AND i.media_sha256 > :after ORDER BY i.media_sha256 LIMIT :n",
    row=Unsized,
)
SET_SIZE = Sql(
    "UPDATE items SET image_width = :w, image_height = :h "
    "WHERE media_sha256 = :s AND image_width IS NULL"
)


def _size(media: MediaStore, sha: str) -> tuple[int, int] | None:
    if not media.exists(sha):
        return None
    try:
        local = media.local_path(sha)
        if local is not None:
            with Image.open(local, formats=PILLOW_FORMATS) as im:
                return im.size
        with tempfile.TemporaryFile() as tmp:
            with media.open(sha) as fh:
                shutil.copyfileobj(fh, tmp)
            tmp.seek(0)
            with Image.open(tmp, formats=PILLOW_FORMATS) as im:
                return im.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


@workflow
def fill_image_sizes(db: Database, media: MediaStore, *, batch: int = 100) -> int:
    """Store the image size of every item whose stored image has none yet; how many files
    were measured."""
    after, n = "", 0
    while True:
        with db.begin("read") as tx:
            rows = tx.rows(UNSIZED, {"after": after, "n": batch})
        if not rows:
            return n
        sizes = [(sha, _size(media, sha)) for (sha,) in rows]
        found = [{"s": sha, "w": s[0], "h": s[1]} for sha, s in sizes if s is not None]
        if found:
            with db.begin("write") as tx:
                tx.many(SET_SIZE, found)
        n += len(found)
        after = rows[-1].sha256
