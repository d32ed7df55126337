"""Reading user files safely: clear errors for missing, empty, binary and non-UTF-8 files."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import InputError

_BINARY_SNIFF = 8192


def looks_binary(data: bytes) -> bool:
    """NUL bytes in the first 8 KiB mean binary (UTF-16 text is not supported as input)."""
    return b"\x00" in data[:_BINARY_SNIFF]


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
                errors: str = "strict", allow_empty: bool = False) -> str:
    if looks_binary(data):
        raise InputError(f"{where}: looks like a binary file, not text")
    if encoding.lower().replace("-", "") in ("utf8", "utf8sig") and data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode(encoding, errors=errors)
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: not valid {encoding} (byte {exc.start}); "
                         f"pass --encoding or --errors replace") from None
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r}") from None
    if not allow_empty and not text.strip():
        raise InputError(f"{where}: file is empty")
    return text


def read_text(path: str | os.PathLike, encoding: str = "utf-8", errors: str = "strict",
              allow_empty: bool = False) -> str:
    """Read a text file; newlines are kept exactly as written (CRLF stays CRLF)."""
    return decode_text(read_bytes(path), str(path), encoding, errors, allow_empty)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write a file so that readers see either the old or the complete new content."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
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
