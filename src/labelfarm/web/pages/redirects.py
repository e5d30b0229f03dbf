"""Where a page may send the browser next: only a path of this site.

A redirect target taken from a request (``/login?next=...``) is a classic way off-site:
browsers read ``//evil``, ``/\\evil`` and ``/<TAB>/evil`` as another host, and a target may
arrive percent-encoded once more. :func:`same_origin_path` accepts only an absolute path of
this origin; every page that redirects to a target from a request goes through it.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote, urlsplit

MAX_TARGET = 2048


def _bad(text: str) -> bool:
    if not text.startswith("/") or text[1:2] in ("/", "\\") or "\\" in text:
        return True
    # control characters (browsers drop tabs and newlines, turning "/\t/x" into "//x")
    return any(unicodedata.category(c) == "Cc" for c in text)


def same_origin_path(raw: str | None, default: str = "/") -> str:
    """``raw`` if it is a path on this origin (one leading ``/``, no second ``/`` or ``\\``
    after it, no scheme or host, no backslash or control character, also once decoded);
    else ``default``."""
    if not raw or len(raw) > MAX_TARGET:
        return default
    decoded = raw
    for _ in range(3):  # "%255C" is "%5C" is "\\"
        once = unquote(decoded)
        if once == decoded:
            break
        decoded = once
    if _bad(raw) or _bad(decoded):
        return default
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc:
        return default
    return raw
