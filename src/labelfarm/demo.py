"""``labelfarm demo``: a workspace with users, a product-photo project, a text
moderation project and a speech transcription project (:mod:`labelfarm.demo_audio`), built
from real data found on the machine.

The product photos come with a seed: photos the team has labelled and reviewed, and control
gold. A train job (run by the worker ``labelfarm serve`` starts) fits a first model on the
reviewed photos, evaluates it on the gold and the held-out reviewed share, promotes it and
pre-labels the photos nobody has labelled yet."""

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
from labelfarm.demo_audio import build_transcription_project
from labelfarm.errors import NotFound
from labelfarm.ml import predictors
from labelfarm.sample_data import ImageSet, product_images
from labelfarm.services import (
    audit,
    items,
    job_queue,
    passwords,
    projects,
    review,
    users,
    workspaces,
)
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


SEED_REVIEWED = 400  # photos the team has labelled and reviewed: they train the first model
SEED_GOLD = 100  # control gold: with the reviewed hold-out share, the evaluation set
FAST_PREDICTORS = ("image-hog-logreg.v1", "image-pixels-logreg.v1")  # best first
FIELD = "product"


def _photo_files(data: ImageSet, n: int, folder: Path) -> tuple[Path, dict[str, str]]:
    """Write the photos as PNGs (upscaled for the screen) and a JSONL describing them: ``n``
    to label, the team's reviewed seed and control gold. Returns the file and the seed's
    answers by external id (the reviewer's decisions, made once the items exist)."""
    rng = np.random.default_rng(7)
    total = min(n + SEED_REVIEWED + SEED_GOLD, len(data.labels))
    idx = rng.choice(len(data.labels), size=total, replace=False)
    n_open = max(0, total - SEED_REVIEWED - SEED_GOLD)
    lines, seed = [], {}
    for j, i in enumerate(idx):
        name = f"{data.name}-{i:05d}.png"
        Image.fromarray(data.images[i]).resize((112, 112), Image.Resampling.NEAREST).save(
            folder / name
        )
        line: dict[str, Any] = {"data": {"image": name}, "media": name, "external_id": name}
        answer = data.classes[int(data.labels[i])]
        if j >= n_open + SEED_REVIEWED:
            line["gold"] = {FIELD: answer}
        elif j >= n_open:
            seed[name] = answer
        lines.append(orjson.dumps(line))
    path = folder / "photos.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path, seed


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
    seed = _import_data(db, media, data, n_images, [p["id"] for p in made], now)
    _review_seed(db, made[0]["id"], seed, now)
    log(
        f"imported {min(n_images, len(data.labels))} product photos to label, "
        f"{len(seed)} the team has labelled and reviewed, {SEED_GOLD} gold photos and "
        f"{len(MODERATION_TEXTS)} reviews"
    )
    job = _start_training(db, made[0], now)
    if job is not None:
        log(f"queued job {job}: train a first model on the reviewed photos, then pre-label")
    manager = db.run(users.user_by_username, "manager")["id"]
    speech = build_transcription_project(
        settings, db, media, ws["id"], now, created_by=manager, log=log
    )
    return {
        "workspace": ws,
        "users": creds,
        "projects": made,
        "credentials_file": str(cred_file),
        "train_job": job,
        "transcription": speech,
    }


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
) -> dict[str, str]:
    """Product photos (with the team's seed and gold) and reviews to moderate; returns the
    seed's answers by external id."""
    photos, moderation = (db.run(projects.load_project, i) for i in ids)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        photo_file, seed = _photo_files(data, n_images, folder)
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
    return seed


def _review_seed(db: Database, project_id: int, seed: dict[str, str], now: float) -> None:
    """The reviewer's decisions on the team's seed photos: their labels, final."""
    project = db.run(projects.load_project, project_id)
    reviewer = db.run(users.user_by_username, "reviewer")["id"]
    after, found = 0, {}
    while page := db.run(items.items_page, project_id, after, items.MAX_PAGE):
        found.update({row["external_id"]: row["id"] for row in page})
        after = page[-1]["id"]
    for name, answer in seed.items():
        value = {FIELD: answer}
        db.run(
            review.decide,
            project,
            found[name],
            reviewer_id=reviewer,
            decision="override",
            value=value,
            now=now,
        )


def _start_training(db: Database, project: dict[str, Any], now: float) -> int | None:
    """A train job on the photos with the best fast image predictor; when it is done the
    version is promoted and pre-labels the photos nobody has labelled."""
    available = {p["name"] for p in predictors.describe() if p["available"]}
    name = next((n for n in FAST_PREDICTORS if n in available), None)
    if name is None:
        return None
    manager = db.run(users.user_by_username, "manager")["id"]
    params = {"predictor": name, "then": "promote_and_predict"}
    return int(
        db.run(
            job_queue.enqueue,
            kind="train",
            params=params,
            now=now,
            project_id=project["id"],
            workspace_id=project["workspace_id"],
            created_by=manager,
        )
    )
