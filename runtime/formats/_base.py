"""Helpers shared by the format modules: reading input (a file or ``-`` for stdin), writing output
atomically (or to stdout), and turning bad offsets into FormatError with file:line."""
from __future__ import annotations

import os
import sys
from typing import Any, Iterable

from ..document import ASSERTIONS, PRESENT, Document, Entity
from ..errors import FormatError, InputError
from ..textio import atomic_write_text, decode_text, read_text

STDIO = "-"


def read_input(path: str | os.PathLike, encoding: str = "utf-8", errors: str = "strict",
               allow_empty: bool = False) -> str:
    """The text of ``path`` (``-`` reads stdin), newlines kept exactly."""
    if str(path) == STDIO:
        data = sys.stdin.buffer.read()
        return decode_text(data, "<stdin>", encoding, errors, allow_empty)
    return read_text(path, encoding, errors, allow_empty)


def write_output(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically, or to stdout when ``path`` is ``-``."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FormatError(f"cannot encode character {text[exc.start]!r} as UTF-8 "
                          f"(a lone surrogate?)", path) from None
    if str(path) == STDIO:
        out = getattr(sys.stdout, "buffer", None)
        if out is None:
            sys.stdout.write(text)
        else:
            sys.stdout.flush()
            out.write(data)
        sys.stdout.flush()
        return
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, expected a file name")
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({exc.strerror or exc})") from None


def check_docs(docs: Iterable[Any]) -> list[Document]:
    out = list(docs)
    for d in out:
        if not isinstance(d, Document):
            raise TypeError(f"expected Document, got {type(d).__name__}")
    return out


def check_raw_text(doc: Document, fmt: str, where=None) -> None:
    """Formats that store the text raw cannot hold NUL (the file would look binary)."""
    if "\x00" in doc.text:
        raise FormatError(f"document {doc.id!r}: text contains a NUL character, which {fmt} "
                          f"cannot hold; use jsonl or conll", where)


def check_type(e: Entity, doc: Document, fmt: str, where=None) -> None:
    if any(c.isspace() for c in e.type) or any(ord(c) < 32 for c in e.type):
        raise FormatError(f"document {doc.id!r}: entity type {e.type!r} contains whitespace or a "
                          f"control character, which {fmt} cannot hold", where)


def make_entity(text: str, start: Any, end: Any, type_: Any, *, where=None, line: int | None = None,
                doc_id: str = "", expect: str | None = None, score: float | None = None,
                source: str | None = None, meta: dict | None = None,
                assertion: str | None = None) -> Entity:
    """An Entity over ``text`` with its text filled in; FormatError (file:line) when the offsets are
    not integers, lie outside the text, or ``expect`` differs from the text at the offsets."""
    try:
        s, e = _as_int(start), _as_int(end)
    except ValueError:
        raise FormatError(f"document {doc_id!r}: entity offsets must be integers, got "
                          f"{start!r} and {end!r}", where, line) from None
    if not type_ or not isinstance(type_, str):
        raise FormatError(f"document {doc_id!r}: entity [{s}, {e}) has no type", where, line)
    if s < 0 or e <= s:
        raise FormatError(f"document {doc_id!r}: invalid entity span [{s}, {e})", where, line)
    if e > len(text):
        raise FormatError(f"document {doc_id!r}: entity [{s}, {e}) lies outside the text "
                          f"(length {len(text)})", where, line)
    real = text[s:e]
    if expect is not None and expect != real:
        raise FormatError(f"document {doc_id!r}: entity text {expect!r} does not match the document "
                          f"text {real!r} at [{s}, {e})", where, line)
    return Entity(s, e, type_, real, score, source, dict(meta or {}),
                  parse_assertion(assertion, where=where, line=line, doc_id=doc_id))


def parse_assertion(v: Any, *, where=None, line: int | None = None, doc_id: str = "") -> str:
    """An assertion value from a file: empty or missing is "present"."""
    if v is None or v == "":
        return PRESENT
    if not isinstance(v, str) or v.strip().lower() not in ASSERTIONS:
        raise FormatError(f"document {doc_id!r}: unknown assertion {v!r} (expected one of "
                          f"{', '.join(ASSERTIONS)})", where, line)
    return v.strip().lower()


def _as_int(v: Any) -> int:
    if isinstance(v, bool):
        raise ValueError
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.strip().lstrip("-").isdigit() and v.strip().isascii():
        return int(v)
    raise ValueError


def parse_score(v: Any, *, where=None, line: int | None = None, doc_id: str = "") -> float | None:
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        raise FormatError(f"document {doc_id!r}: score must be a number, got {v!r}", where, line)
    try:
        return float(v)
    except (TypeError, ValueError):
        raise FormatError(f"document {doc_id!r}: score must be a number, got {v!r}",
                          where, line) from None


def format_score(score: float | None) -> str:
    """``repr`` of the float: reads back to exactly the same value."""
    return "" if score is None else repr(float(score))


def shorten(s: str, n: int = 60) -> str:
    """``s`` cut to ``n`` characters (the last one an ellipsis) for an error message."""
    return s if len(s) <= n else s[: n - 1] + "…"
