"""Task handles: what an annotator sees of a task instead of the item's id.

An item id is the same for every annotator, so annotators who compare notes could tell
which tasks are gold (one of them answers, the others copy) or list ids a check flags. A
handle names an item for one annotator in one project only: it is the item id encrypted
with AES-SIV under a key derived from the instance's secret key, with the project and the
user as associated data. It is

* opaque: it says nothing of the item, its id, its order or whether it is gold;
* stable: the same (project, user, item) always gives the same handle, so a lease held
  across calls, a checkout and the offline outbox agree without storing anything;
* personal: another user's or another project's handle does not decrypt (AES-SIV
  authenticates), so a handle cannot be shared, guessed or carried elsewhere;
* of fixed length (32 characters, base64url), whatever the id.

Only the web layer translates; the services below the routes work with item ids.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

LENGTH = 32  # characters: 8 bytes of id and the 16-byte synthetic IV, base64url
_PURPOSE = b"labelfarm task handle v1"


class UnknownTask(ValueError):
    """The text is not a handle this annotator was given in this project."""


class TaskHandles:
    """Encode item ids as handles for one annotator in one project, and back."""

    def __init__(self, secret: bytes) -> None:
        # a key of its own, so a handle reveals nothing about keys used elsewhere
        key = hmac.new(secret, _PURPOSE, hashlib.sha512).digest()  # 64 bytes: AES-256-SIV
        self._siv = AESSIV(key)

    def encode(self, project_id: int, user_id: int, item_id: int) -> str:
        sealed = self._siv.encrypt(struct.pack(">Q", item_id), _context(project_id, user_id))
        return base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def decode(self, project_id: int, user_id: int, handle: object) -> int:
        """The item id behind ``handle``; :class:`UnknownTask` if it is not one of this
        annotator's in this project."""
        if not isinstance(handle, str) or len(handle) != LENGTH or not handle.isascii():
            raise UnknownTask("unknown task")
        try:
            sealed = base64.urlsafe_b64decode(handle + "=" * (-len(handle) % 4))
            plain = self._siv.decrypt(sealed, _context(project_id, user_id))
        except (binascii.Error, ValueError, InvalidTag):
            raise UnknownTask("unknown task") from None
        (item_id,) = struct.unpack(">Q", plain)
        return int(item_id)


def _context(project_id: int, user_id: int) -> list[bytes]:
    return [b"task", struct.pack(">QQ", project_id, user_id)]
