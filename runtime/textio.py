"""Reading user files safely: clear errors for missing, empty, binary and undecodable files.

Text with a byte-order mark (UTF-8, UTF-16 or UTF-32, either byte order) is decoded by its mark
when the encoding asked for is UTF-8 (the default) or the mark's own Unicode encoding; with any
other ``encoding`` the bytes are decoded as asked. Binary detection (a NUL character) looks at
the decoded text for UTF-16/UTF-32 and at the bytes otherwise.
"""
from __future__ import annotations

import codecs
import os
import tempfile
from pathlib import Path

from .errors import InputError

_BINARY_SNIFF = 8192
# longest first: the UTF-32-LE mark begins with the UTF-16-LE one
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
         (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


def looks_binary(data: bytes) -> bool:
    """NUL bytes in the first 8 KiB mean binary (for byte-oriented encodings such as UTF-8)."""
    return b"\x00" in data[:_BINARY_SNIFF]


def check_encoding(encoding: str) -> str:
    """The canonical name of a text encoding; InputError for an unknown or non-text codec."""
    try:
        info = codecs.lookup(encoding)
    except (LookupError, TypeError, ValueError):
        raise InputError(f"unknown encoding {encoding!r} (e.g. utf-8, utf-16, gb18030, latin-1)") from None
    if not getattr(info, "_is_text_encoding", True):
        raise InputError(f"{encoding!r} is not a text encoding")
    return info.name


def detect_bom(data: bytes) -> tuple[str, int] | None:
    """(encoding, length of the mark) for data that starts with a Unicode byte-order mark."""
    for bom, enc in _BOMS:
        if data.startswith(bom):
            return enc, len(bom)
    return None


def _family(name: str) -> str:
    n = name.lower().replace("_", "-")
    for fam in ("utf-32", "utf-16", "utf-8"):
        if n.startswith(fam):
            return fam
    return n


def read_bytes(path: str | os.PathLike) -> bytes:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a directory, expected a file")
    try:
        return p.read_bytes()
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror or exc})") from None


def decode_text(data: bytes, where: str = "<input>", encoding: str = "utf-8",
                errors: str = "strict", allow_empty: bool = False, bom: bool | None = None) -> str:
    """Bytes -> text. ``bom``: decode by a byte-order mark (and drop it); None = unless the
    encoding is spelled ``utf_8`` (readers whose data may begin with a real U+FEFF character)."""
    name = check_encoding(encoding)
    shown = encoding
    if bom is None:
        bom = encoding.lower() != "utf_8"
    mark = detect_bom(data) if bom else None
    if mark is not None and _family(name) in ("utf-8", _family(mark[0])):
        name, data, shown = mark[0], data[mark[1]:], f"{mark[0]} (by its byte-order mark)"
    wide = _family(name) in ("utf-16", "utf-32")
    if not wide and looks_binary(data):
        raise InputError(f"{where}: looks like a binary file, not text")
    try:
        text = data.decode(name, errors=errors)
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: not valid {shown} (byte {exc.start}); "
                         f"pass --encoding or --errors replace") from None
    if wide and "\x00" in text[:_BINARY_SNIFF]:
        raise InputError(f"{where}: looks like a binary file, not text")
    if not allow_empty and not text.strip():
        raise InputError(f"{where}: file is empty")
    return text


def read_text(path: str | os.PathLike, encoding: str = "utf-8", errors: str = "strict",
              allow_empty: bool = False) -> str:
    """Read a text file; newlines are kept exactly as written (CRLF stays CRLF)."""
    return decode_text(read_bytes(path), str(path), encoding, errors, allow_empty)


def _umask() -> int:
    try:   # Linux: read it without changing it (os.umask would, briefly, for every thread)
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write a file so that readers see either the old or the complete new content. A new file
    gets the permissions any new file gets (0666 less the umask), a replaced file keeps its own."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = p.stat().st_mode & 0o7777
    except OSError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding=encoding, newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
