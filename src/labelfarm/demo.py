"""``labelfarm demo``: a workspace with users, a product-photo project and a text
moderation project, built from real data found on the machine."""

from __future__ import annotations

import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from PIL import Image

from labelfarm.db.engine import Database, migrate
from labelfarm.errors import NotFound
from labelfarm.sample_data import ImageSet, product_images
from labelfarm.services import audit, passwords, projects, users, workspaces
from labelfarm.services.imports import import_items
from labelfarm.services.media import MediaStore
from labelfarm.settings import Settings

DEMO_USERS = (
    ("admin", "admin"),
    ("manager", "manager"),
    ("reviewer", "reviewer"),
    ("anbu", "annotator"),
    ("priya", "annotator"),
    ("ravi", "annotator"),
    ("client", "client"),
)
LOCALES = {"anbu": "ta", "priya": "hi"}

TAMIL = {
    "tshirt_top": "டி-ஷர்ட்",
    "trouser": "கால்சட்டை",
    "pullover": "ஸ்வெட்டர்",
    "dress": "உடை",
    "coat": "கோட்",
    "sandal": "செருப்பு",
    "shirt": "சட்டை",
    "sneaker": "காலணி",
    "bag": "பை",
    "ankle_boot": "பூட்ஸ்",
}
HINDI = {
    "tshirt_top": "टी-शर्ट",
    "trouser": "पतलून",
    "pullover": "स्वेटर",
    "dress": "पोशाक",
    "coat": "कोट",
    "sandal": "सैंडल",
    "shirt": "कमीज़",
    "sneaker": "स्नीकर",
    "bag": "थैला",
    "ankle_boot": "बूट",
}

MODERATION_TEXTS = (
    "Great quality jacket, fits well and the colour is exactly as shown.",
    "BUY CHEAP FOLLOWERS NOW!!! visit my profile for 90% discount",
    "The delivery was late but the support team helped me quickly.",
    "This seller is a fraud and everyone who buys here is an idiot.",
    "Does this shirt come in XL? I could not find the size chart.",
    "Click here to win a free phone, limited offer, send your bank details",
    "நல்ல தரம், விலைக்கு ஏற்ற பொருள். மீண்டும் வாங்குவேன்.",
    "இந்த கடை மோசடி, யாரும் வாங்க வேண்டாம்!!!",
    "कपड़ा अच्छा है लेकिन रंग फोटो से थोड़ा अलग है।",
    "सस्ते फॉलोअर्स खरीदें, अभी संपर्क करें!!!",
    "The stitching came apart after one wash. Disappointed.",
    "Anyone watching the cricket match tonight?",
    "Shoes are comfortable for long walks, recommended.",
    "Your mother should be ashamed of selling this garbage.",
    "Packaging was eco-friendly, nice touch.",
    "Earn money from home!!! 5000 per day guaranteed, WhatsApp me",
    "மிக வேகமான டெலிவரி, நன்றி!",
    "यह बैग बहुत मजबूत है, रोज़ ऑफिस ले जाती हूँ।",
    "Colour faded but the fit is perfect.",
    "I will find where you live if you don't refund me.",
)


def _credentials(path: Path) -> list[dict[str, str]]:
    return orjson.loads(path.read_bytes()) if path.exists() else []


def _nearest_centroid_predictions(data: ImageSet, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A small real model: nearest class centroid on pixels, fitted on the images not
    imported, with softmax-of-distance scores. Good enough to show pre-filled labels."""
    train = np.setdiff1d(np.arange(len(data.labels)), idx)[:5000]
    x = data.images[train].reshape(len(train), -1).astype(np.float32) / 255.0
    centroids = np.stack([x[data.labels[train] == k].mean(0) for k in range(len(data.classes))])
    q = data.images[idx].reshape(len(idx), -1).astype(np.float32) / 255.0
    d = ((q[:, None, :] - centroids[None]) ** 2).sum(-1)
    logits = -d / d.std()
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    return p.argmax(1), p.max(1)


def _photo_files(data: ImageSet, n: int, folder: Path) -> Path:
    """Write ``n`` images as PNGs (upscaled for the screen) and a JSONL describing them."""
    rng = np.random.default_rng(7)
    idx = np.sort(rng.choice(len(data.labels), size=min(n, len(data.labels)), replace=False))
    pred, score = _nearest_centroid_predictions(data, idx)
    lines = []
    for j, i in enumerate(idx):
        name = f"{data.name}-{i:05d}.png"
        Image.fromarray(data.images[i]).resize((112, 112), Image.Resampling.NEAREST).save(
            folder / name
        )
        line: dict[str, Any] = {"data": {"image": name}, "media": name, "external_id": name}
        if j % 2 == 0:  # half the items carry a model prediction to pre-fill
            line["prediction"] = {
                "model": "nearest-centroid-v1",
                "value": {"product": data.classes[int(pred[j])]},
                "score": round(float(score[j]), 4),
            }
        lines.append(orjson.dumps(line))
    path = folder / "photos.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _photo_project(classes: tuple[str, ...]) -> dict[str, Any]:
    display = {"ta": TAMIL, "hi": HINDI} if classes[0] in TAMIL else {}
    return {
        "name": "Product photos",
        "overlap": 2,
        "lease_seconds": 600,
        "ordering": "fifo",
        "guidelines": "Pick the product category that best matches the photo. "
        "If the photo shows two products, label the larger one.",
        "schema": {
            "data": {"image": "image"},
            "fields": [
                {"name": "product", "type": "choice", "options": list(classes), "display": display},
                {"name": "note", "type": "text", "required": False},
            ],
        },
    }


MODERATION_PROJECT: dict[str, Any] = {
    "name": "Review moderation",
    "overlap": 3,
    "lease_seconds": 300,
    "ordering": "priority",
    "guidelines": "Decide whether the customer review may be published.",
    "schema": {
        "data": {"text": "text"},
        "fields": [
            {
                "name": "verdict",
                "type": "choice",
                "options": ["publish", "spam", "abusive", "off_topic"],
            },
            {
                "name": "flags",
                "type": "multichoice",
                "required": False,
                "options": ["threat", "personal_attack", "contact_details", "profanity"],
            },
        ],
    },
}


def build_demo(
    settings: Settings, *, n_images: int = 500, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Create (or find) the demo workspace; returns users with passwords and project ids."""
    db = Database(settings.resolved_database_url, synchronous=settings.sqlite_synchronous)
    audit.use_key(db, settings.resolved_audit_key)
    migrate(db)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    cred_file = settings.data_dir / "demo-credentials.json"
    try:
        ws = db.run(workspaces.workspace_by_slug, "demo")
    except NotFound:
        ws = None
    if ws is not None and cred_file.exists():
        log("demo workspace already set up; reusing it")
        return {
            "workspace": ws,
            "users": _credentials(cred_file),
            "projects": db.run(projects.list_projects, ws["id"]),
            "credentials_file": str(cred_file),
        }
    data = product_images()
    log(f"building the demo from {data.name} ({len(data.labels):,} images available)")
    now = time.time()
    ws = db.run(workspaces.create_workspace, slug="demo", name="Demo client", now=now)
    creds = _people(db, ws["id"], now)
    cred_file.write_bytes(orjson.dumps(creds, option=orjson.OPT_INDENT_2))
    cred_file.chmod(0o600)
    made = [
        db.run(projects.create_project, workspace_id=ws["id"], now=now, actor_id=None, **spec)
        for spec in (_photo_project(data.classes), MODERATION_PROJECT)
    ]
    media = MediaStore(settings.resolved_media_root, settings.resolved_secret_key)
    _import_data(db, media, data, n_images, [p["id"] for p in made], now)
    log(
        f"imported {min(n_images, len(data.labels))} product photos and "
        f"{len(MODERATION_TEXTS)} reviews"
    )
    return {"workspace": ws, "users": creds, "projects": made, "credentials_file": str(cred_file)}


def _people(db: Database, workspace_id: int, now: float) -> list[dict[str, str]]:
    """The demo's site and users, each with a fresh password and a role in the workspace."""
    db.run(users.create_site, code="tirunelveli", name="Tirunelveli office", now=now)
    creds = []
    for username, role in DEMO_USERS:
        password = secrets.token_urlsafe(12)  # 16 characters, meeting the password policy
        while passwords.policy_problems(password, username):
            password = secrets.token_urlsafe(12)
        db.run(
            users.register,
            username=username,
            password=password,
            now=now,
            workspace_id=workspace_id,
            role=role,
            site="tirunelveli",
            is_superuser=(role == "admin"),
            locale=LOCALES.get(username, "en"),
            display_name=username.capitalize(),
        )
        creds.append({"username": username, "password": password, "role": role})
    return creds


def _import_data(
    db: Database, media: MediaStore, data: ImageSet, n_images: int, ids: list[int], now: float
) -> None:
    """Product photos (half pre-labelled by a small model) and reviews to moderate."""
    photos, moderation = (db.run(projects.load_project, i) for i in ids)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        photo_file = _photo_files(data, n_images, folder)
        db.run(
            import_items,
            photos,
            photo_file,
            "jsonl",
            media=media,
            now=now,
            user_id=None,
            base_dir=folder,
        )
        texts = folder / "reviews.jsonl"
        texts.write_bytes(
            b"".join(
                orjson.dumps({"data": {"text": t}, "priority": 1 if "!!!" in t else 0}) + b"\n"
                for t in MODERATION_TEXTS
            )
        )
        db.run(import_items, moderation, texts, "jsonl", media=media, now=now, user_id=None)
