"""What a predictor reads of items: their data and their media's bytes, a batch at a time.

The rows are read in one short read transaction; the files are read after it, outside any
transaction (local files directly, other filesystems in one concurrent fetch per batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from labelfarm.db.batches import chunks
from labelfarm.db.tx import CoreTx, Sql, transaction
from labelfarm.jsonutil import loads
from labelfarm.ml.predictors import ItemInput
from labelfarm.services.media import MediaStore


class InputRow(NamedTuple):
    id: int
    data: str
    media_sha256: str | None


ROWS = Sql(
    "SELECT id, data, media_sha256 FROM items WHERE project_id = :p AND id IN :ids",
    row=InputRow,
)


@transaction("read")
def input_rows(tx: CoreTx, project_id: int, item_ids: Sequence[int]) -> list[InputRow]:
    """The items' rows, in the order of ``item_ids`` (ids not in the project are left out)."""
    found: dict[int, InputRow] = {}
    for chunk in chunks(list(item_ids)):
        for r in tx.rows(ROWS, {"p": project_id, "ids": list(chunk)}):
            found[r.id] = r
    return [found[i] for i in item_ids if i in found]


def read_media(media: MediaStore, shas: Sequence[str]) -> dict[str, bytes]:
    """The bytes of each stored file named."""
    wanted = sorted(set(shas))
    if media.is_local:
        out = {}
        for sha in wanted:
            with open(media.path(sha), "rb") as fh:
                out[sha] = fh.read()
        return out
    paths = {media.path(sha): sha for sha in wanted}
    fetched = media.fs.cat(list(paths)) if paths else {}
    return {paths[p]: data for p, data in fetched.items()}


def to_inputs(media: MediaStore, rows: Sequence[InputRow]) -> list[ItemInput]:
    """The predictor's inputs of the rows: data decoded, media bytes read."""
    blobs = read_media(media, [r.media_sha256 for r in rows if r.media_sha256])
    return [
        ItemInput(r.id, loads(r.data), blobs[r.media_sha256] if r.media_sha256 else None)
        for r in rows
    ]
