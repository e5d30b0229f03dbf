"""Signed anchors of the audit chain: proof of what the log held at a moment.

A keyed chain cannot be rewritten without the key, but whoever can write to the database
can still delete the newest rows and move the head back: the shorter chain is intact. An
anchor catches that. It is a small JSON document naming the chain's newest row (its id and
hash), the row count and the time, signed with an Ed25519 private key the operator keeps
away from the database. Anyone holding the public key (a client included) can check the
signature; :func:`verify_anchored` then checks that the chain still holds the anchored row
with the same hash and continues from it, unbroken, to the head. The format is described in
``docs/audit.md``.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from labelfarm.db.engine import Database
from labelfarm.db.tables import audit_anchors
from labelfarm.db.tx import CoreTx, Sql, transaction, workflow
from labelfarm.errors import Conflict, InvalidInput
from labelfarm.jsonutil import iso, loads
from labelfarm.services import audit
from labelfarm.services.audit_chain import VerifyResult

FORMAT = "labelfarm-audit-anchor/1"
FIELDS = ("format", "instance", "chain", "last_id", "hash", "time", "rows", "signed_at", "key_id")


class RowTime(NamedTuple):
    ts: float


class Hash(NamedTuple):
    hash: str


class Count(NamedTuple):
    n: int


class Stored(NamedTuple):
    anchor: str


ROW_TIME = Sql("SELECT ts FROM audit_log WHERE id = :id", row=RowTime)
FIRST_HASH = Sql("SELECT hash FROM audit_log WHERE id = 1", row=Hash)
N_ROWS = Sql("SELECT COUNT(*) FROM audit_log", row=Count)
LATEST = Sql("SELECT anchor FROM audit_anchors ORDER BY id DESC LIMIT 1", row=Stored)


# -- keys -------------------------------------------------------------------------------------
def generate_key_pair() -> tuple[bytes, bytes]:
    """A new Ed25519 key pair as PEM: (private key, PKCS#8; public key, SubjectPublicKeyInfo),
    the same files ``openssl genpkey -algorithm ed25519`` and ``openssl pkey -pubout`` make."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return private, public_pem(key.public_key())


def write_key_pair(prefix: Path) -> tuple[Path, Path]:
    """Write a new key pair to PREFIX.pem (readable by its owner only) and PREFIX.pub.pem;
    never over an existing file."""
    private_path, public_path = Path(f"{prefix}.pem"), Path(f"{prefix}.pub.pem")
    taken = [str(p) for p in (private_path, public_path) if p.exists()]
    if taken:
        raise Conflict(f"not overwriting {', '.join(taken)}")
    private, public = generate_key_pair()
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(private)
    public_path.write_bytes(public)
    return private_path, public_path


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput("the signing key must be an Ed25519 key")
    return key


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInput("the public key must be an Ed25519 key")
    return key


def key_id(key: Ed25519PublicKey) -> str:
    """A short name for a public key, so that an anchor says which key signed it."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def signed_bytes(anchor: Mapping[str, Any]) -> bytes:
    """What the signature covers: every field but ``signature``, as JSON with sorted keys and
    no spaces (the values are strings, integers and null only)."""
    body = {k: v for k, v in anchor.items() if k != "signature"}
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


# -- making one -------------------------------------------------------------------------------
@transaction("write")
def anchor_head(
    tx: CoreTx, private_key_pem: bytes, *, now: float, instance: str | None = None
) -> dict[str, Any]:
    """Sign the chain's current head, keep the anchor, and record that it was taken."""
    key = load_private_key(private_key_pem)
    head = tx.one(audit.HEAD, {})  # locked: no row is appended meanwhile
    if head is None:
        raise InvalidInput("the audit log is empty: there is nothing to anchor yet")
    row = tx.one(ROW_TIME, {"id": head.last_id})
    first = tx.one(FIRST_HASH, {})
    count = tx.one(N_ROWS, {})
    anchor: dict[str, Any] = {
        "format": FORMAT,
        "instance": instance or None,
        "chain": first.hash if first is not None else None,
        "last_id": head.last_id,
        "hash": head.hash,
        "time": iso(row.ts) if row is not None else None,
        "rows": count.n if count is not None else 0,
        "signed_at": iso(now),
        "key_id": key_id(key.public_key()),
    }
    anchor["signature"] = base64.b64encode(key.sign(signed_bytes(anchor))).decode()
    tx.execute(
        audit_anchors.insert().values(
            created_at=now, last_id=head.last_id, anchor=orjson.dumps(anchor).decode()
        )
    )
    audit.record(
        tx,
        action="audit.anchor",
        target=f"audit:{head.last_id}",
        now=now,
        details={"last_id": head.last_id, "hash": head.hash, "key_id": anchor["key_id"]},
    )
    return anchor


def to_json(anchor: Mapping[str, Any]) -> bytes:
    """The anchor as a file: indented JSON (the signature does not depend on the layout)."""
    return orjson.dumps(anchor, option=orjson.OPT_INDENT_2) + b"\n"


@transaction("read")
def latest_anchor(tx: CoreTx) -> dict[str, Any] | None:
    """The newest anchor taken on this instance, or None."""
    row = tx.one(LATEST, {})
    return None if row is None else dict(loads(row.anchor))


# -- checking ---------------------------------------------------------------------------------
def read_anchor(data: bytes) -> dict[str, Any]:
    try:
        anchor = loads(data)
    except ValueError as exc:
        raise InvalidInput(f"the anchor is not JSON: {exc}") from None
    if not isinstance(anchor, dict):
        raise InvalidInput("the anchor is not a JSON object")
    return anchor


def check_anchor(anchor: Mapping[str, Any], public_key: Ed25519PublicKey) -> list[str]:
    """What is wrong with the anchor itself (its form, its signature); [] when it is sound.
    Needs no database: a client can run it on an anchor it was sent."""
    if not isinstance(anchor, Mapping) or anchor.get("format") != FORMAT:
        return [f"not an anchor of the format {FORMAT!r}"]
    wrong = [
        name
        for name in ("last_id", "rows")
        if not isinstance(anchor.get(name), int) or isinstance(anchor.get(name), bool)
    ] + [name for name in ("hash", "signature") if not isinstance(anchor.get(name), str)]
    if wrong:
        return [f"the anchor's {', '.join(wrong)} missing or malformed"]
    try:
        signature = base64.b64decode(anchor["signature"], validate=True)
        public_key.verify(signature, signed_bytes(anchor))
    except (InvalidSignature, ValueError):
        return [
            "the anchor's signature does not verify with this public key (the anchor was "
            "altered, or another key signed it)"
        ]
    return []


@transaction("read")
def verify_anchored(
    tx: CoreTx, anchors: Sequence[Mapping[str, Any]], public_key_pem: bytes
) -> VerifyResult:
    """Walk the chain (see :func:`labelfarm.services.audit.verify`) and check each anchor:
    its signature with the public key, and that the chain still holds the anchored rows (its
    first and its newest then) with the same hashes and goes on from them to the head."""
    key = load_public_key(public_key_pem)
    anchored: dict[int, str] = {}
    problems: list[dict[str, Any]] = []
    report: list[dict[str, Any]] = []
    for n, anchor in enumerate(anchors, start=1):
        wrong = check_anchor(anchor, key)
        problems += [{"id": None, "problem": f"anchor {n}: {text}"} for text in wrong]
        report.append(
            {"anchor": n, "last_id": anchor.get("last_id"), "signature_ok": not wrong}
            if isinstance(anchor, Mapping)
            else {"anchor": n, "signature_ok": False}
        )
        if not wrong:
            anchored[int(anchor["last_id"])] = str(anchor["hash"])
            if isinstance(anchor.get("chain"), str):
                anchored.setdefault(1, anchor["chain"])
    result = audit.verify(tx, anchored=anchored)
    result.problems[:0] = problems
    result.ok = result.ok and not problems
    result.anchors = report
    return result


@workflow
def verify_files(
    db: Database, anchor_paths: Sequence[Path], public_key_path: Path | None
) -> VerifyResult:
    """:func:`verify_anchored` with anchors and a public key read from files (the CLI)."""
    if not anchor_paths:
        return db.run(audit.verify)
    if public_key_path is None:
        raise InvalidInput("checking anchors needs the public key that signed them")
    anchors = [read_anchor(path.read_bytes()) for path in anchor_paths]
    return db.run(verify_anchored, anchors, public_key_path.read_bytes())
