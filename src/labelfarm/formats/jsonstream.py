"""Reading a large JSON document a piece at a time, with bounded memory and no extra
dependency.

A COCO file of 100,000 images is a few hundred megabytes of JSON; loading it whole takes
gigabytes of Python objects. :func:`walk_object` walks the top-level object instead and
yields each element of the arrays it is asked to stream (``images``, ``annotations``) one by
one, decoded by the standard library's C scanner (``raw_decode``) from a sliding text
buffer; other top-level values are decoded whole. :func:`walk_array` does the same for a
document that is one array (a Label Studio export). Every piece comes with its line number.

Memory is bounded whatever the file holds: a value longer than the limit given (an array
element: the largest item; any other value: ``MAX_VALUE``) is refused, with its line, once
the buffer holds that much of it, without reading further. Text that is not UTF-8 is
refused with the line and byte offset where the bad byte is.

The standard library reads a little more than JSON: ``NaN`` and ``Infinity``, lone UTF-16
surrogates (``"\\ud800"``), and integers beyond 64 bits, which the database's JSON encoder
cannot write. With ``strict=True`` a value is what ``orjson.loads`` would make of it: the
first two are refused, such integers become floats.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterator
from typing import IO, Any

import orjson

CHUNK = 1 << 20
MAX_ELEMENT = 1 << 20  # one array element larger than this is refused (the largest item)…
MAX_VALUE = 16 << 20  # …and any other value (COCO's categories, say) larger than this
_WS = re.compile(r"[ \t\n\r]*")


class JsonStreamError(ValueError):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


class _Constant(ValueError):
    """``NaN``, ``Infinity`` or ``-Infinity``: Python's extension, not JSON."""


def _refuse_constant(name: str) -> Any:
    raise _Constant(name)


_HERE = " (in the value that starts on this line)"
_decoder = json.JSONDecoder()
_strict_decoder = json.JSONDecoder(parse_constant=_refuse_constant)


def _as_orjson_reads(value: Any) -> Any:
    """``value`` as ``orjson.loads`` would have read it; raises orjson.JSONDecodeError."""
    try:
        orjson.dumps(value)  # cheap, and almost always enough
        return value
    except orjson.JSONEncodeError:  # a lone surrogate, a huge integer, deep nesting
        return orjson.loads(json.dumps(value))


def _mib(n: int) -> str:
    return f"{n / (1 << 20):g} MiB"


class _Buffer:
    def __init__(
        self,
        fh: IO[bytes],
        strict: bool = False,
        check_cancel: Callable[[], None] | None = None,
    ) -> None:
        self.fh = fh
        self.check_cancel = check_cancel
        self.limit = MAX_VALUE  # the longest value being read may be
        self.strict = strict
        self.decoder = _strict_decoder if strict else _decoder
        self.dec = codecs.getincrementaldecoder("utf-8-sig")()
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.line = 1  # the line number at index ``counted``
        self.counted = 0
        self.bytes_read = 0

    def line_at(self, index: int) -> int:
        if index > self.counted:
            self.line += self.buf.count("\n", self.counted, index)
            self.counted = index
        return self.line

    def fill(self) -> None:
        if self.check_cancel is not None:
            self.check_cancel()
        if len(self.buf) - self.pos > self.limit:  # the value being read is too long already
            raise JsonStreamError(self.line_at(self.pos), f"a value larger than {_mib(self.limit)}")
        raw = self.fh.read(CHUNK)
        self.bytes_read += len(raw)
        try:
            text = self.dec.decode(raw, final=not raw)
        except UnicodeDecodeError as exc:
            raise self._not_utf8(exc, raw) from None
        self.line_at(self.pos)
        self.buf = self.buf[self.pos :] + text
        self.counted -= self.pos
        self.pos = 0
        if not raw:
            self.eof = True

    def _not_utf8(self, exc: UnicodeDecodeError, raw: bytes) -> JsonStreamError:
        """Where the bad byte is: its line (the text decoded so far, then the undecoded
        bytes before it) and its offset in the file."""
        before = exc.object[: exc.start]
        line = self.line_at(len(self.buf)) + before.count(b"\n")
        offset = self.bytes_read - len(raw) - (len(exc.object) - len(raw)) + exc.start
        return JsonStreamError(line, f"not UTF-8 (byte {offset}): {exc.reason}")

    def peek(self) -> str:
        """The next non-blank character ('' at the end), without consuming it."""
        while True:
            m = _WS.match(self.buf, self.pos)
            self.pos = m.end() if m else self.pos
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if self.eof:
                return ""
            self.fill()

    def expect(self, chars: str, what: str) -> str:
        c = self.peek()
        if c == "" or c not in chars:
            found = "the end of the file (truncated?)" if c == "" else repr(c)
            raise JsonStreamError(self.line_at(self.pos), f"expected {what}, found {found}")
        self.pos += 1
        return c

    def value(self, limit: int = MAX_VALUE) -> tuple[Any, int]:
        """Decode the next value, of at most ``limit`` characters; returns it and the line
        it starts on."""
        self.limit = limit
        self.peek()
        while True:
            try:
                obj, end = self.decoder.raw_decode(self.buf, self.pos)
            except _Constant as exc:
                raise JsonStreamError(self.line_at(self.pos), f"{exc} is not JSON{_HERE}") from None
            except RecursionError:
                raise JsonStreamError(
                    self.line_at(self.pos), "arrays and objects are nested too deeply"
                ) from None
            except json.JSONDecodeError as exc:
                near_end = exc.pos >= len(self.buf) - 64 or exc.msg.startswith("Unterminated")
                if self.eof or not near_end:
                    line = self.line_at(self.pos) + exc.doc.count("\n", self.pos, exc.pos)
                    reason = exc.msg if not self.eof or not near_end else _ends_early(exc.msg)
                    raise JsonStreamError(line, reason) from None
                self.fill()
                continue
            if end == len(self.buf) and not self.eof and not isinstance(obj, dict | list | str):
                self.fill()  # a number or literal may go on in the next chunk
                continue
            line = self.line_at(self.pos)
            if end - self.pos > limit:
                raise JsonStreamError(line, f"a value larger than {_mib(limit)}")
            self.pos = end
            if self.strict:
                try:
                    obj = _as_orjson_reads(obj)
                except orjson.JSONDecodeError as exc:
                    raise JsonStreamError(line, f"{exc.msg}{_HERE}") from None
                except RecursionError:
                    raise JsonStreamError(line, f"nested too deeply{_HERE}") from None
            return obj, line


def _ends_early(msg: str) -> str:
    """Why a value broke off at the end of the file, in words (the decoder's message
    names a position it does not give)."""
    if msg.startswith("Unterminated string"):
        inside = "inside a string (a closing quote is missing)"
    elif msg.startswith("Expecting value"):
        inside = "where a value was expected"
    else:
        inside = f"in the middle of a value ({msg.removesuffix(' at').lower()})"
    return f"the file ends {inside}: it is truncated or incomplete"


def walk_object(
    fh: IO[bytes],
    arrays: frozenset[str] | set[str],
    *,
    max_element: int = MAX_ELEMENT,
    check_cancel: Callable[[], None] | None = None,
) -> Iterator[tuple[str, int | None, Any, int]]:
    """Yield ``(key, index, value, line)`` for the top-level object read from ``fh``.

    Arrays under a key in ``arrays`` are yielded element by element (``index`` counts
    them, each of at most ``max_element`` characters); every other value whole, with
    ``index`` None. ``check_cancel`` is called before each chunk is read. Raises
    :class:`JsonStreamError`.
    """
    b = _Buffer(fh, check_cancel=check_cancel)
    b.expect("{", "a JSON object ('{')")
    if b.peek() == "}":
        b.pos += 1
        return
    while True:
        key, line = b.value()
        if not isinstance(key, str):
            raise JsonStreamError(line, "expected a key (a string)")
        b.expect(":", "':'")
        if key in arrays and b.peek() == "[":
            b.pos += 1
            index = 0
            if b.peek() == "]":
                b.pos += 1
            else:
                while True:
                    value, line = b.value(max_element)
                    yield key, index, value, line
                    index += 1
                    if b.expect(",]", "',' or ']'") == "]":
                        break
        else:
            value, line = b.value()
            yield key, None, value, line
        if b.expect(",}", "',' or '}'") == "}":
            break
    if b.peek() != "":
        raise JsonStreamError(b.line_at(b.pos), "text after the end of the JSON object")


def walk_array(
    fh: IO[bytes],
    *,
    strict: bool = False,
    max_element: int = MAX_ELEMENT,
    check_cancel: Callable[[], None] | None = None,
) -> Iterator[tuple[int | None, Any, int]]:
    """Yield ``(index, value, line)`` for each element of the top-level array read from
    ``fh``, each of at most ``max_element`` characters; a top-level value of another kind is
    yielded whole, with ``index`` None, under the same bound. Raises
    :class:`JsonStreamError`."""
    b = _Buffer(fh, strict, check_cancel)
    c = b.peek()
    if c == "":
        raise JsonStreamError(b.line_at(b.pos), "only blanks, no JSON value")
    if c != "[":
        value, line = b.value(max_element)
        yield None, value, line
    else:
        b.pos += 1
        if b.peek() == "]":
            b.pos += 1
        else:
            index = 0
            while True:
                value, line = b.value(max_element)
                yield index, value, line
                index += 1
                if b.expect(",]", "',' or ']'") == "]":
                    break
    if b.peek() != "":
        raise JsonStreamError(b.line_at(b.pos), "text after the end of the JSON value")
