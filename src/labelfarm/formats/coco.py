"""COCO instances JSON: boxes, polygons, RLE masks (uncompressed and compressed), ``iscrowd``.

Import reads a ``.json`` file, or a folder / zip holding one with the images beside it.
Each COCO image becomes an item ``{"image": file_name, "width", "height", "meta"?}`` whose
external id is the image id; each annotation becomes a box (when the schema has a box field
or there is no segmentation), polygons or a mask, all sharing ``group`` = the annotation id.
``iscrowd`` and the free ``attributes`` land in the shapes' attributes, the rest of the
annotation (id, area, score, extra keys) in ``meta``, so an export writes them back.

The file is read a piece at a time (:mod:`labelfarm.formats.jsonstream`) and spooled into a
scratch SQLite file, so memory stays flat however many images it lists.

Exports: ``coco`` (the JSON) and ``coco-zip`` (``annotations/instances.json``, the images
under ``images/``, and ``manifest.json``).
"""

from __future__ import annotations

import math
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from labelfarm.formats import archive
from labelfarm.formats.jsonstream import JsonStreamError, walk_object
from labelfarm.formats.manifest import manifest, media_entries, safe_name
from labelfarm.formats.objects import (
    TYPE_KIND,
    Parsed,
    Scan,
    label_ids,
    label_meta,
    read_parsed,
    register_scanner,
    schema_labels,
    value_objects,
)
from labelfarm.formats.registry import (
    ExportContext,
    ExportRecord,
    ImportSource,
    ReadResult,
    RowProblem,
    register_reader,
    register_writer,
)
from labelfarm.schema import Schema
from labelfarm.schema.mask import rle_area, rle_bbox

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


@register_scanner("coco")
def scan_coco(source: ImportSource) -> Scan:
    try:
        root = archive.unpacked(source)
    except archive.ArchiveError as exc:
        return Scan(iter([Parsed(source.filename, {}, problems=exc.problems)]))
    json_path = _find_json(root)
    if json_path is None:
        return _problem(source, "no COCO .json file found")
    name = source.filename if json_path == source.path else json_path.relative_to(root).as_posix()
    scratch = source.options.get("scratch")
    tmpdir = tempfile.mkdtemp(dir=scratch)
    db = sqlite3.connect(os.path.join(tmpdir, "coco.sqlite"))
    db.executescript(
        "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
        "CREATE TABLE images (seq INTEGER PRIMARY KEY, key TEXT, line INT, doc BLOB);"
        "CREATE TABLE anns (seq INTEGER PRIMARY KEY, image_key TEXT, line INT, doc BLOB);"
    )
    categories: dict[Any, str] = {}
    meta: dict[str, dict[str, Any]] = {}
    problems: list[RowProblem] = []

    def bad(line: int, field: str, reason: str, what: str = "") -> None:
        problems.append(RowProblem(f"{name} line {line}{what}", field, reason))

    batch: dict[str, list[tuple[Any, ...]]] = {"images": [], "anns": []}

    def flush() -> None:
        db.executemany("INSERT INTO images (key, line, doc) VALUES (?, ?, ?)", batch["images"])
        db.executemany("INSERT INTO anns (image_key, line, doc) VALUES (?, ?, ?)", batch["anns"])
        batch["images"].clear()
        batch["anns"].clear()

    seen_top: set[str] = set()
    try:
        with open(json_path, "rb") as fh:
            for key, index, value, line in walk_object(fh, {"images", "annotations"}):
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
                if len(batch["images"]) + len(batch["anns"]) >= 5000:
                    flush()
                source.bytes_read = fh.tell()
    except JsonStreamError as exc:
        bad(exc.line, "", f"not valid JSON: {exc.reason}")
    except OSError as exc:
        bad(0, "", f"cannot read: {exc}")
    flush()
    for required in ("images", "annotations", "categories"):
        if (
            not problems
            and required not in seen_top
            and not (required == "annotations" and "images" in seen_top)
        ):
            bad(1, required, f"a COCO file has a top-level '{required}' list")
    db.execute("CREATE INDEX ix_anns ON anns (image_key, seq)")
    db.execute("CREATE INDEX ix_images ON images (key)")
    for key, line in db.execute(  # duplicates found by the database, not a set in memory
        "SELECT key, line FROM images WHERE seq NOT IN (SELECT MIN(seq) FROM images GROUP BY key)"
        " ORDER BY seq LIMIT 1000"
    ):
        bad(line, "id", f"image id {orjson.loads(key)!r} is used twice")
    for line, doc in db.execute(
        "SELECT line, doc FROM anns WHERE image_key NOT IN (SELECT key FROM images) LIMIT 1000"
    ):
        bad(line, "image_id", f"no image with id {orjson.loads(doc)['image_id']!r}")
    scan = Scan(
        _items(db, tmpdir, name, problems, categories, source, json_path),
        labels=list(dict.fromkeys(categories.values())),
        label_meta=meta,
    )
    return scan


def _categories(
    value: Any, line: int, categories: dict[Any, str], meta: dict[str, dict[str, Any]], bad: Any
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
        if key in img and not (_num(img[key]) and img[key] >= 0):
            p.problems.append(RowProblem(where, key, f"must be a number, got {img[key]!r}"))
    if p.problems:
        return p
    p.data = {"image": file_name}
    for key in ("width", "height"):
        if key in img:
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
    return objs


@register_reader("coco")
def read_coco(source: ImportSource) -> Iterator[ReadResult]:
    return read_parsed(source, scan_coco(source))


# -- export -------------------------------------------------------------------------------


def _poly_area(pts: list[list[float]]) -> float:
    return abs(sum(pts[i - 1][0] * p[1] - p[0] * pts[i - 1][1] for i, p in enumerate(pts))) / 2


def coco_annotations(objects: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Group an item's objects into COCO annotations (without ids, image or category)."""
    groups: dict[Any, list[dict[str, Any]]] = {}
    for n, obj in enumerate(objects):
        if obj["kind"] not in ("box", "polygon", "mask"):
            continue
        key = ("g", obj["group"], obj["label"]) if obj.get("group") is not None else ("n", n)
        groups.setdefault(key, []).append(obj)
    for objs in groups.values():
        box = next((o for o in objs if o["kind"] == "box"), None)
        polys = [o for o in objs if o["kind"] == "polygon"]
        mask = next((o for o in objs if o["kind"] == "mask"), None)
        first = next((o for o in objs if o.get("meta") or o.get("attributes")), objs[0])
        meta = dict(first.get("meta") or {})
        attrs = dict(first.get("attributes") or {})
        ann: dict[str, Any] = {"id": meta.pop("id", None), "label": objs[0]["label"]}
        if polys:
            ann["segmentation"] = [[c for p in o["points"] for c in p] for o in polys]
            area: float = sum(_poly_area(o["points"]) for o in polys)
        elif mask is not None:
            ann["segmentation"] = mask["rle"]
            area = rle_area(mask["rle"])
        else:
            area = box["w"] * box["h"] if box else 0.0
        if box is not None:
            ann["bbox"] = [box["x"], box["y"], box["w"], box["h"]]
        elif polys:
            xs = [p[0] for o in polys for p in o["points"]]
            ys = [p[1] for o in polys for p in o["points"]]
            ann["bbox"] = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
        elif mask is not None:
            ann["bbox"] = rle_bbox(mask["rle"])
        ann["area"] = meta.pop("area", area)
        ann["iscrowd"] = attrs.pop("iscrowd", 1 if mask is not None and not polys else 0)
        if attrs:
            ann["attributes"] = attrs
        score = first.get("score")
        if score is not None:
            ann["score"] = score
        ann.update(meta)
        yield ann


def image_id(rec: ExportRecord) -> int | str:
    ext = rec.external_id
    if ext is not None and ext.lstrip("-").isdigit():
        return int(ext)
    return rec.item_id


def image_name(rec: ExportRecord) -> str:
    v = rec.data.get("image")
    return v if isinstance(v, str) and v else f"{rec.item_id}.jpg"


def write_coco_json(
    records: Iterable[ExportRecord],
    schema: Schema,
    ctx: ExportContext,
    counts: dict[str, int],
    seen: list[ExportRecord] | None = None,
) -> Iterator[bytes]:
    labels = schema_labels(schema, ("box", "polygon", "mask"))
    ids = label_ids(schema, labels, "id", 1)
    meta = label_meta(schema)
    with tempfile.TemporaryFile() as spool:
        yield b'{"images": ['
        next_id = 0
        n_img = n_ann = 0
        out: list[bytes] = []
        for rec in records:
            img: dict[str, Any] = {"id": image_id(rec), "file_name": image_name(rec)}
            for key in ("width", "height"):
                if key in rec.data:
                    img[key] = rec.data[key]
            if isinstance(rec.data.get("meta"), dict):
                img.update({k: v for k, v in rec.data["meta"].items() if k not in img})
            out.append((b"," if n_img else b"") + orjson.dumps(img))
            n_img += 1
            if seen is not None:
                seen.append(rec)
            value = (rec.label or {}).get("value")
            for ann in coco_annotations(value_objects(schema, value)):
                label = ann.pop("label")
                if label not in ids:
                    continue
                if ann["id"] is None:
                    next_id += 1
                    ann["id"] = next_id
                elif isinstance(ann["id"], int):
                    next_id = max(next_id, ann["id"])
                doc = {"id": ann.pop("id"), "image_id": img["id"], "category_id": ids[label], **ann}
                spool.write((b"," if n_ann else b"") + orjson.dumps(doc))
                n_ann += 1
            if len(out) >= 1000:
                yield b"".join(out)
                out.clear()
            if seen is not None and len(seen) >= 1000:
                yield b""  # let the caller drain ``seen``
        yield b"".join(out)
        yield b'], "annotations": ['
        spool.seek(0)
        while chunk := spool.read(1 << 20):
            yield chunk
        cats = [
            {
                "id": ids[label],
                "name": label,
                "supercategory": meta.get(label, {}).get("supercategory", ""),
                **{
                    k: v for k, v in meta.get(label, {}).items() if k not in ("id", "supercategory")
                },
            }
            for label in labels
        ]
        counts.update(images=n_img, annotations=n_ann, categories=len(cats))
        info = {
            "description": f"labelfarm export of project {ctx.project_name!r}",
            "labelfarm": manifest("coco", ctx, counts),
        }
        yield b'], "categories": ' + orjson.dumps(cats) + b', "info": ' + orjson.dumps(info)
        yield b', "licenses": []}'


@register_writer("coco", "application/json", extension="json", context=True)
def write_coco(
    records: Iterable[ExportRecord], schema: Schema, ctx: ExportContext
) -> Iterator[bytes]:
    yield from (c for c in write_coco_json(records, schema, ctx, {}) if c)


@register_writer("coco-zip", "application/zip", extension="zip", context=True)
def write_coco_zip(
    records: Iterable[ExportRecord], schema: Schema, ctx: ExportContext
) -> Iterator[bytes]:
    """The JSON, then every image, then the manifest. Images are fetched again from the
    records seen, a thousand at a time, so the archive streams."""
    z = archive.ZipStream()
    counts: dict[str, int] = {}
    seen: list[ExportRecord] = []
    with tempfile.TemporaryFile() as names:

        def remember() -> None:
            for rec in seen:
                if rec.media_sha256:
                    names.write(
                        orjson.dumps([safe_name(image_name(rec)), rec.media_sha256]) + b"\n"
                    )
            seen.clear()

        def json_chunks() -> Iterator[bytes]:
            for chunk in write_coco_json(records, schema, ctx, counts, seen):
                remember()
                if chunk:
                    yield chunk
            remember()

        yield from z.add("annotations/instances.json", json_chunks())
        names.seek(0)
        files = (orjson.loads(line) for line in names)
        yield from media_entries(z, ((f"images/{n}", sha) for n, sha in files), ctx, counts)
    yield from z.finish(manifest("coco-zip", ctx, counts))
