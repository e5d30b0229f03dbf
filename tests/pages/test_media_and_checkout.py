"""Resized images behind signed URLs, and batch checkout under a longer lease."""

from __future__ import annotations

import io
import time
from datetime import datetime

from lf_site import Site
from PIL import Image

from labelfarm.web.pages.images import cache_dir


def _lease(site: Site, project: str, n: int = 1) -> tuple[object, list[dict]]:
    client = site.client("annotator")
    r = client.post(f"/api/v1/projects/{site.world.projects[project]}/next", json={"n": n})
    r.raise_for_status()
    return client, r.json()["tasks"]


def test_resized_image_is_small_cached_and_names_the_original_size(site: Site) -> None:
    client, (task,) = _lease(site, "boxes")
    base, query = task["media_url"].split("?")
    r = client.get(f"{base}/fit/320?{query}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/jpeg"
    assert (r.headers["x-image-width"], r.headers["x-image-height"]) == ("640", "480")
    image = Image.open(io.BytesIO(r.content))
    assert image.size == (320, 240)
    original = client.get(task["media_url"]).content
    assert len(r.content) < len(original)
    cached = list(cache_dir(site.app.state.ctx).rglob("*-320.jpg"))
    assert len(cached) == 1
    again = client.get(f"{base}/fit/320?{query}")
    assert again.content == r.content
    # an image already small enough comes as it is
    big = client.get(f"{base}/fit/1024?{query}")
    assert big.content == original and big.headers["x-image-width"] == "640"


def test_resized_image_needs_a_valid_signature_and_a_known_size(site: Site) -> None:
    client, (task,) = _lease(site, "boxes")
    base, query = task["media_url"].split("?")
    assert client.get(f"{base}/fit/320?{query[:-2]}00").status_code == 403
    anonymous = site.client()
    assert anonymous.get(f"{base}/fit/320?{query}").status_code == 200  # the URL is the key
    assert client.get(f"{base}/fit/333?{query}").status_code == 422
    expired = query.replace("expires=", "expires=1", 1)
    assert client.get(f"{base}/fit/320?{expired}").status_code == 403


def test_checkout_leases_a_batch_for_hours(site: Site) -> None:
    client, held = _lease(site, "texts", 1)
    pid = site.world.projects["texts"]
    r = client.post(f"/api/v1/projects/{pid}/checkout", json={"n": 3, "hours": 8})
    assert r.status_code == 200
    tasks = r.json()["tasks"]
    assert [t["task"] for t in tasks][:1] == [held[0]["task"]]  # held lease first
    assert len(tasks) == 3
    for task in tasks:
        expires = datetime.fromisoformat(task["lease_expires_at"]).timestamp()
        assert abs(expires - (time.time() + 8 * 3600)) < 60
    bad = client.post(f"/api/v1/projects/{pid}/checkout", json={"n": 500})
    assert bad.status_code == 422
    progress = site.client("manager").get(f"/api/v1/projects/{pid}/progress").json()
    assert progress["live_leases"] >= 3


def test_checkout_is_refused_to_clients(site: Site) -> None:
    pid = site.world.projects["texts"]
    r = site.client("client").post(f"/api/v1/projects/{pid}/checkout", json={"n": 1})
    assert r.status_code == 403
