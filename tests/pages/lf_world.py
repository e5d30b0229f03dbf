"""A small world for page and browser tests: a workspace, users of every role, and projects
(an image project with boxes, a choice project with Tamil names, a text project).

Built through the services on a real SQLite database in a temporary folder.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from PIL import Image, ImageDraw

from labelfarm.db.engine import Database, migrate
from labelfarm.services import audit, projects, users, workspaces
from labelfarm.services.imports import import_items
from labelfarm.services.media import MediaStore
from labelfarm.settings import Settings

PASSWORD = "correct horse battery"
ROLES = ("admin", "manager", "reviewer", "annotator", "client")
TAMIL_NAMES = {
    "cat": "பூனை",
    "dog": "நாய்",
    "bird": "பறவை",
    "kind": "வகை",
    "note": "குறிப்பு",
}


@dataclass
class World:
    settings: Settings
    workspace_id: int
    other_workspace_id: int
    projects: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)


def settings_for(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir, secret_key="test-secret-key-for-pages", media_url_seconds=900
    )


def photo(width: int, height: int, seed: int = 0) -> bytes:
    """A PNG with a few coloured shapes (so boxes have something to frame)."""
    image = Image.new("RGB", (width, height), (230 - seed % 40, 235, 240))
    draw = ImageDraw.Draw(image)
    for k in range(4):
        x, y = (k * 97 + seed * 31) % (width - 80), (k * 53 + seed * 17) % (height - 80)
        draw.rectangle([x, y, x + 60 + k * 10, y + 50 + k * 8], fill=(40 * k, 90, 200 - 30 * k))
    grain = np.random.default_rng(seed).integers(0, 40, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(np.asarray(image, dtype=np.uint8) // 8 * 7 + grain)  # photo-like
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _write_items(folder: Path, name: str, rows: list[dict[str, Any]]) -> Path:
    path = folder / f"{name}.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def build_world(
    data_dir: Path, *, n_images: int = 6, n_choice: int = 40, image_size=(640, 480)
) -> World:
    settings = settings_for(data_dir)
    db = Database(settings.resolved_database_url)
    audit.use_key(db, settings.resolved_audit_key)
    migrate(db)
    now = time.time()
    ws = db.run(workspaces.create_workspace, slug="acme", name="Acme labels", now=now)
    other = db.run(workspaces.create_workspace, slug="other", name="Other client", now=now)
    world = World(settings, ws["id"], other["id"])
    people = [(role, ws["id"], role, "en", role.capitalize()) for role in ROLES]
    people += [
        ("anbu", ws["id"], "annotator", "ta", "அன்பு"),
        ("outsider", other["id"], "admin", "en", None),
    ]
    for username, workspace_id, role, locale, display_name in people:
        user = db.run(
            users.register,
            username=username,
            password=PASSWORD,
            now=now,
            workspace_id=workspace_id,
            role=role,
            locale=locale,
            display_name=display_name,
        )
        world.users[username] = user["id"]
    with db.begin("write") as conn:
        boxes = projects.create_project(
            conn,
            workspace_id=ws["id"],
            name="Shop photos",
            now=now,
            actor_id=None,
            guidelines="Draw a box around each product.",
            schema={
                "data": {"image": "image"},
                "fields": [
                    {"name": "boxes", "type": "bbox", "labels": ["product", "logo"]},
                ],
            },
        )
        animals = projects.create_project(
            conn,
            workspace_id=ws["id"],
            name="விலங்குகள்",
            now=now,
            actor_id=None,
            guidelines="படத்தில் உள்ள விலங்கைத் தேர்ந்தெடுக்கவும்.",
            schema={
                "data": {"image": "image"},
                "fields": [
                    {
                        "name": "kind",
                        "type": "choice",
                        "options": ["cat", "dog", "bird"],
                        "display": {"ta": TAMIL_NAMES},
                    },
                ],
            },
        )
        texts = projects.create_project(
            conn,
            workspace_id=ws["id"],
            name="Review moderation",
            now=now,
            actor_id=None,
            overlap=1,
            guidelines="Decide whether the review may be published.",
            schema={
                "data": {"text": "text"},
                "fields": [
                    {
                        "name": "verdict",
                        "type": "choice",
                        "options": ["publish", "spam", "abusive"],
                        "display": {
                            "ta": {
                                "verdict": "முடிவு",
                                "publish": "வெளியிடு",
                                "spam": "விளம்பரக் குப்பை",
                                "abusive": "தவறான மொழி",
                            }
                        },
                    },
                    {
                        "name": "flags",
                        "type": "multichoice",
                        "required": False,
                        "options": ["threat", "contact_details", "profanity"],
                        "display": {
                            "ta": {
                                "flags": "குறிப்புகள்",
                                "threat": "அச்சுறுத்தல்",
                                "contact_details": "தொடர்பு விவரங்கள்",
                                "profanity": "ஆபாசம்",
                            }
                        },
                    },
                    {
                        "name": "stars",
                        "type": "number",
                        "min": 1,
                        "max": 5,
                        "integer": True,
                        "required": False,
                        "display": {"ta": {"stars": "நட்சத்திரங்கள்"}},
                    },
                    {
                        "name": "note",
                        "type": "text",
                        "required": False,
                        "display": {"ta": {"note": "குறிப்பு"}},
                    },
                ],
            },
        )
    world.projects = {"boxes": boxes["id"], "animals": animals["id"], "texts": texts["id"]}
    media = MediaStore(settings.resolved_media_root, settings.resolved_secret_key)
    folder = data_dir / "incoming"
    folder.mkdir(exist_ok=True)
    rows_boxes, rows_animals = [], []
    for i in range(n_images):
        name = f"shop-{i}.png"
        (folder / name).write_bytes(photo(*image_size, seed=i))
        rows_boxes.append({"data": {"image": name}, "media": name, "external_id": name})
    for i in range(n_choice):
        name = f"animal-{i % 8}.png"
        if not (folder / name).exists():
            (folder / name).write_bytes(photo(320, 240, seed=100 + i))
        row: dict[str, Any] = {"data": {"image": name}, "media": name, "external_id": f"a{i}"}
        if i % 3 == 0:
            row["prediction"] = {"model": "toy-v1", "value": {"kind": "dog"}, "score": 0.8}
        rows_animals.append(row)
    reviews = [
        "Great jacket, fits well.",
        "BUY CHEAP FOLLOWERS NOW!!! visit my profile",
        "நல்ல தரம், விலைக்கு ஏற்ற பொருள்.",
        "कपड़ा अच्छा है लेकिन रंग अलग है।",
        "هذا المنتج رائع وسعره مناسب",
    ]
    with db.begin("read") as conn:
        loaded = {k: projects.load_project(conn, v) for k, v in world.projects.items()}
    for key, rows in (("boxes", rows_boxes), ("animals", rows_animals)):
        import_items(
            db,
            loaded[key],
            _write_items(folder, key, rows),
            "jsonl",
            media=media,
            now=now,
            user_id=None,
            base_dir=folder,
        )
    import_items(
        db,
        loaded["texts"],
        _write_items(folder, "texts", [{"data": {"text": r}} for r in reviews]),
        "jsonl",
        media=media,
        now=now,
        user_id=None,
    )
    db.engine.dispose()
    return world
