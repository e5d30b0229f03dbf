"""Reading COCO instances JSON: the scan of a file into items and their shapes.

Import reads a ``.json`` file, or a folder / zip holding one with the images beside it.
Each COCO image becomes an item ``{"image": file_name, "width", "height", "meta"?}`` whose
external id is the image id; each annotation becomes a box (when the schema has a box field
or there is no segmentation), polygons or a mask, all sharing ``group`` = the annotation id.
``iscrowd`` and the free ``attributes`` land in the shapes' attributes, the rest of the
annotation (id, area, score, extra keys) in ``meta``, so an export writes them back (see
:mod:`labelfarm.formats.coco_writer`).

The file is read a piece at a time (:mod:`labelfarm.formats.jsonstream`) and spooled into a
scratch SQLite file, so memory stays flat however many images it lists.
"""

from __future__ import annotations

import math
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import orjson

from labelfarm.formats import archive
from labelfarm.formats.jsonstream import JsonStreamError, walk_object
from labelfarm.formats.objects import TYPE_KIND, Parsed, Scan, read_parsed, register_scanner
from labelfarm.formats.registry import ImportSource, ReadResult, RowProblem, register_reader

_IMAGE_KEYS = ("id", "file_name", "width", "height")
_ANN_KEYS = (
    "id",
    "image_id",
    "category_id",
    "bbox",
    "segmentation",
    "iscrowd",
    "attributes",
    "area",
    "score",
)


def _find_json(root: Path) -> Path | None:
    if root.is_file():
        return root
    found = sorted(p for p in root.rglob("*.json") if not p.name.startswith("."))
    preferred = [p for p in found if p.parent.name == "annotations"] or found
    return preferred[0] if len(preferred) >= 1 else None


def _image_dirs(json_path: Path, base: Path | None) -> list[Path]:
    dirs = [json_path.parent, json_path.parent / "images", json_path.parent.parent / "images"]
    if base is not None:
        dirs += [base, base / "images"]
    return [d for d in dict.fromkeys(dirs) if d.is_dir()]


def _problem(source: ImportSource, reason: str) -> Scan:
    return Scan(
        iter([Parsed(source.filename, {}, problems=[RowProblem(source.filename, "", reason)])])
    )


def _is_id(v: Any) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or isinstance(v, str)


class _ReportProblem(Protocol):
    """Records a problem found at a line of the COCO file (``what``: which entry there)."""

    def __call__(self, line: int, field: str, reason: str, what: str = "") -> None: ...


@register_scanner("coco")
def scan_coco(source: ImportSource) -> Scan:
    """The COCO file's images as items with their shapes, its categories as the labels.
    The file is checked whole before the first item is handed out."""
    try:
        root = archive.unpacked(source)
    except archive.ArchiveError as exc:
        return Scan(iter([Parsed(source.filename, {}, problems=exc.problems)]))
    json_path = _find_json(root)
    if json_path is None:
        return _problem(source, "no COCO .json file found")
    name = source.filename if json_path == source.path else json_path.relative_to(root).as_posix()
    tmpdir, db = _scratch_db(source.options.get("scratch"))
    categories: dict[Any, str] = {}
    meta: dict[str, dict[str, Any]] = {}
    problems: list[RowProblem] = []

    def bad(line: int, field: str, reason: str, what: str = "") -> None:
        problems.append(RowProblem(f"{name} line {line}{what}", field, reason))

    seen_top = _spool(source, json_path, db, categories, meta, bad)
    _check_top_level(seen_top, problems, bad)
    # the indexes serve the id checks and the join that hands out each image's annotations
    db.execute("CREATE INDEX ix_anns ON anns (image_key, seq)")
    db.execute("CREATE INDEX ix_images ON images (key)")
    _check_ids(db, bad)
    return Scan(
        _items(db, tmpdir, name, problems, categories, source, json_path),
        labels=list(dict.fromkeys(categories.values())),
        label_meta=meta,
    )


def _scratch_db(scratch: str | os.PathLike[str] | None) -> tuple[str, sqlite3.Connection]:
    """A new scratch directory (under ``scratch``) and the SQLite file in it that the
    images and annotations are spooled into: one row per entry, with its line."""
    tmpdir = tempfile.mkdtemp(dir=scratch)
    db = sqlite3.connect(os.path.join(tmpdir, "coco.sqlite"))
    db.executescript(
        "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
        "CREATE TABLE images (seq INTEGER PRIMARY KEY, key TEXT, line INT, doc BLOB);"
        "CREATE TABLE anns (seq INTEGER PRIMARY KEY, image_key TEXT, line INT, doc BLOB);"
    )
    return tmpdir, db


def _spool(
    source: ImportSource,
    json_path: Path,
    db: sqlite3.Connection,
    categories: dict[Any, str],
    meta: dict[str, dict[str, Any]],
    bad: _ReportProblem,
) -> set[str]:
    """Read the file once: its images and annotations into ``db`` (keyed by image id, in
    batches), its categories into ``categories`` and ``meta``. Returns the top-level keys
    seen; entries that are not objects with ids, and unreadable JSON, are reported."""
    batch: dict[str, list[tuple[Any, ...]]] = {"images": [], "anns": []}

    def flush() -> None:
        db.executemany("INSERT INTO images (key, line, doc) VALUES (?, ?, ?)", batch["images"])
        db.executemany("INSERT INTO anns (image_key, line, doc) VALUES (?, ?, ?)", batch["anns"])
        batch["images"].clear()
        batch["anns"].clear()

    seen_top: set[str] = set()
    try:
        with open(json_path, "rb") as fh:
            entries = walk_object(
                fh,
                {"images", "annotations"},
                max_element=source.limits.item_bytes,
                check_cancel=source.check_cancel,
            )
            for key, index, value, line in entries:
                seen_top.add(key)
                what = f" ({key}[{index}])" if index is not None else ""
                if key == "images":
                    if not isinstance(value, dict) or not _is_id(value.get("id")):
                        bad(line, "id", "an image is an object with an 'id'", what)
                        continue
                    k = orjson.dumps(value["id"]).decode()
                    batch["images"].append((k, line, orjson.dumps(value)))
                elif key == "annotations":
                    if not isinstance(value, dict):
                        bad(line, "", "an annotation is an object", what)
                        continue
                    img = value.get("image_id")
                    if not _is_id(img):
                        bad(line, "image_id", f"missing or not an id: {img!r}", what)
                        continue
                    batch["anns"].append((orjson.dumps(img).decode(), line, orjson.dumps(value)))
                elif key == "categories":
                    _categories(value, line, categories, meta, bad)
                else:  # info, licenses and the like: kept for an export in COCO
                    source.file_meta.setdefault("coco", {})[key] = value
                if len(batch["images"]) + len(batch["anns"]) >= 5000:
                    flush()
                source.bytes_read = fh.tell()
    except JsonStreamError as exc:
        bad(exc.line, "", f"not valid JSON: {exc.reason}")
    except OSError as exc:
        bad(0, "", f"cannot read: {exc}")
    flush()
    return seen_top


def _check_top_level(seen_top: set[str], problems: list[RowProblem], bad: _ReportProblem) -> None:
    """Report a missing top-level ``images``, ``annotations`` or ``categories`` list (a file
    with images may have no annotations), unless the file already has problems."""
    for required in ("images", "annotations", "categories"):
        if (
            not problems
            and required not in seen_top
            and not (required == "annotations" and "images" in seen_top)
        ):
            bad(1, required, f"a COCO file has a top-level '{required}' list")


def _check_ids(db: sqlite3.Connection, bad: _ReportProblem) -> None:
    """Report image ids used twice and annotations of no image (up to a thousand each)."""
    for key, line in db.execute(  # duplicates found by the database, not a set in memory
        "SELECT key, line FROM images WHERE seq NOT IN (SELECT MIN(seq) FROM images GROUP BY key)"
        " ORDER BY seq LIMIT 1000"
    ):
        bad(line, "id", f"image id {orjson.loads(key)!r} is used twice")
    for line, doc in db.execute(
        "SELECT line, doc FROM anns WHERE image_key NOT IN (SELECT key FROM images) LIMIT 1000"
    ):
        bad(line, "image_id", f"no image with id {orjson.loads(doc)['image_id']!r}")


def _categories(
    value: Any,
    line: int,
    categories: dict[Any, str],
    meta: dict[str, dict[str, Any]],
    bad: _ReportProblem,
) -> None:
    if not isinstance(value, list):
        bad(line, "categories", "must be a list")
        return
    for i, cat in enumerate(value):
        where = f" (categories[{i}])"
        if (
            not isinstance(cat, dict)
            or not _is_id(cat.get("id"))
            or not isinstance(cat.get("name"), str)
            or not cat["name"].strip()
        ):
            bad(line, f"categories[{i}]", "a category has an 'id' and a non-empty 'name'", where)
            continue
        if cat["id"] in categories:
            bad(line, f"categories[{i}].id", f"category id {cat['id']!r} is used twice", where)
        categories[cat["id"]] = cat["name"]
        meta[cat["name"]] = {k: v for k, v in cat.items() if k != "name"}


def _items(
    db: sqlite3.Connection,
    tmpdir: str,
    name: str,
    problems: list[RowProblem],
    categories: dict[Any, str],
    source: ImportSource,
    json_path: Path,
) -> Iterator[Parsed]:
    try:
        if problems:
            yield Parsed(name, {}, problems=problems)
            return
        dirs = _image_dirs(json_path, source.options.get("base_dir"))
        kinds = {TYPE_KIND.get(f.type_name) for f in source.schema.fields}
        # Keep COCO's own box beside a segmentation when the schema has a box field (or no
        # image field at all: a schema is being guessed); otherwise it is derived on export.
        has_box = "box" in kinds or not kinds & {"polygon", "mask"}
        cur = db.execute(
            "SELECT i.seq, i.line, i.doc, a.line, a.doc FROM images i "
            "LEFT JOIN anns a ON a.image_key = i.key ORDER BY i.seq, a.seq"
        )
        current: tuple[int, int, dict[str, Any]] | None = None
        anns: list[tuple[int, dict[str, Any]]] = []
        for seq, line, doc, aline, adoc in cur:
            if current is None or current[0] != seq:
                if current is not None:
                    yield _image(current[1], current[2], anns, name, categories, dirs, has_box)
                current, anns = (seq, line, orjson.loads(doc)), []
            if adoc is not None:
                anns.append((aline, orjson.loads(adoc)))
        if current is not None:
            yield _image(current[1], current[2], anns, name, categories, dirs, has_box)
    finally:
        db.close()
        for f in Path(tmpdir).iterdir():
            f.unlink()
        os.rmdir(tmpdir)


def _num(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v)


def _image(
    line: int,
    img: dict[str, Any],
    anns: list[tuple[int, dict[str, Any]]],
    name: str,
    categories: dict[Any, str],
    dirs: list[Path],
    has_box: bool,
) -> Parsed:
    where = f"{name} line {line} (image {img['id']!r})"
    p = Parsed(where, {}, external_id=str(img["id"]), annotator="coco")
    file_name = img.get("file_name")
    if not isinstance(file_name, str) or not file_name:
        p.problems.append(RowProblem(where, "file_name", "an image needs a 'file_name'"))
    for key in ("width", "height"):
        # null: not given (Label Studio writes it for images without regions); the size is
        # then the image file's, decoded when it is imported
        if img.get(key) is not None and not (_num(img[key]) and img[key] >= 0):
            p.problems.append(RowProblem(where, key, f"must be a number, got {img[key]!r}"))
    if p.problems:
        return p
    p.data = {"image": file_name}
    for key in ("width", "height"):
        if img.get(key) is not None:
            p.data[key] = img[key]
    extra = {k: v for k, v in img.items() if k not in _IMAGE_KEYS}
    if extra:
        p.data["meta"] = extra
    for d in dirs:
        candidate = (d / str(file_name)).resolve()
        if candidate.is_relative_to(d.resolve()) and candidate.is_file():
            p.media_path = candidate
            break
    if anns:
        p.objects = []
        for aline, ann in anns:
            objs = _annotation(
                ann,
                f"{name} line {aline} (annotation {ann.get('id')!r})",
                categories,
                has_box,
                p.problems,
            )
            p.objects.extend(objs)
    return p


def _annotation(
    ann: dict[str, Any],
    where: str,
    categories: dict[Any, str],
    has_box: bool,
    problems: list[RowProblem],
) -> list[dict[str, Any]]:
    def bad(field: str, reason: str) -> list[dict[str, Any]]:
        problems.append(RowProblem(where, field, reason))
        return []

    label = categories.get(ann.get("category_id"))
    if label is None:
        return bad("category_id", f"no category with id {ann.get('category_id')!r}")
    bbox, seg = ann.get("bbox"), ann.get("segmentation")
    if bbox is not None and (
        not isinstance(bbox, list) or len(bbox) != 4 or not all(_num(v) for v in bbox)
    ):
        return bad("bbox", f"a box is [x, y, width, height], got {bbox!r}")
    group = ann.get("id")
    if group is not None and not _is_id(group):
        return bad("id", f"not an id: {group!r}")
    attrs = dict(ann.get("attributes") or {}) if isinstance(ann.get("attributes"), dict) else None
    if ann.get("attributes") is not None and attrs is None:
        return bad("attributes", "must be an object")
    attrs = attrs or {}
    if "iscrowd" in ann:
        attrs["iscrowd"] = ann["iscrowd"]
    meta = {k: v for k, v in ann.items() if k not in _ANN_KEYS or k in ("id", "area")}
    meta.pop("image_id", None)
    if ann.get("segmentation") == []:  # box-only, said so: written back while it has none
        meta["segmentation"] = []
    score = ann.get("score")
    if score is not None and not _num(score):
        return bad("score", f"must be a number, got {score!r}")
    objs: list[dict[str, Any]] = []
    if isinstance(seg, list) and seg:
        for i, poly in enumerate(seg):
            if (
                not isinstance(poly, list)
                or len(poly) < 6
                or len(poly) % 2
                or not all(_num(v) for v in poly)
            ):
                return bad(
                    f"segmentation[{i}]",
                    "a polygon is a flat list of x, y pairs (at least 3 points)",
                )
            pts = [[poly[j], poly[j + 1]] for j in range(0, len(poly), 2)]
            objs.append({"kind": "polygon", "label": label, "points": pts, "group": group})
    elif isinstance(seg, dict):
        if set(seg) != {"size", "counts"}:
            return bad("segmentation", "an RLE is {size: [h, w], counts}")
        objs.append({"kind": "mask", "label": label, "rle": seg, "group": group})
    elif seg not in (None, []):
        return bad("segmentation", "a list of polygons or an RLE object")
    if bbox is not None and (has_box or not objs):
        x, y, w, h = bbox
        objs.insert(
            0, {"kind": "box", "label": label, "x": x, "y": y, "w": w, "h": h, "group": group}
        )
    if not objs:
        return bad("bbox", "the annotation has neither a box nor a segmentation")
    objs[0].update(attributes=attrs or None, meta=meta or None, score=score)
    for obj in objs:
        obj["at"] = where
    return objs


@register_reader("coco")
def read_coco(source: ImportSource) -> Iterator[ReadResult]:
    return read_parsed(source, scan_coco(source))
