"""biotag.runtime.formats: document readers and writers.

    from biotag.runtime.formats import read_documents, write_documents
    docs = read_documents("corpus.PubTator.txt")           # format guessed from the name
    write_documents(docs, "out_brat", "brat")

Formats (``FORMATS``): jsonl (canonical), brat (a folder), bioc-xml, bioc-json, pubtator, conll,
csv. Every reader gives Documents with code-point offsets; every writer writes atomically (a
temporary file renamed into place) and ``-`` means stdin/stdout for the single-file formats. Bad
input raises InputError / FormatError with a one-line message naming file:line where there is
one. What each format carries, and its limits, is in its module's docstring.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from ..document import Document
from ..errors import InputError
from . import bioc_, brat, conll, csv_, jsonl, pubtator


@dataclass(frozen=True)
class Format:
    name: str
    read: Callable[..., list[Document]]     # read(path, encoding="utf-8", errors="strict")
    write: Callable[[Iterable[Document], str | os.PathLike], None]  # write(docs, path)
    extensions: tuple[str, ...]
    directory: bool = False                 # brat: the path is a folder
    carries_scores: bool = True
    description: str = ""
    dumps: Callable[[list[Document]], str] | None = None   # one file's content; None: not one file


FORMATS: dict[str, Format] = {
    "jsonl": Format("jsonl", jsonl.read, jsonl.write, jsonl.EXTENSIONS,
                    dumps=jsonl.dumps, description="canonical JSONL, one document per line"),
    "brat": Format("brat", brat.read, brat.write, brat.EXTENSIONS, directory=True,
                   description="brat standoff folder (.txt + .ann per document)"),
    "bioc-xml": Format("bioc-xml", bioc_.read_xml, bioc_.write_xml, bioc_.XML_EXTENSIONS,
                       dumps=bioc_.dumps_xml, description="BioC XML, character offsets"),
    "bioc-json": Format("bioc-json", bioc_.read_json, bioc_.write_json, bioc_.JSON_EXTENSIONS,
                        dumps=bioc_.dumps_json, description="BioC JSON, character offsets"),
    "pubtator": Format("pubtator", pubtator.read, pubtator.write, pubtator.EXTENSIONS,
                       dumps=pubtator.dumps, description="PubTator title/abstract + mention lines"),
    "conll": Format("conll", conll.read, conll.write, conll.EXTENSIONS, carries_scores=False,
                    dumps=conll.dumps, description="token lines with offsets, one BIO column per nesting layer"),
    "csv": Format("csv", csv_.read, csv_.write, csv_.EXTENSIONS,
                  dumps=csv_.dumps, description="one row per entity plus a text row per document"),
}
ALIASES = {"bioc": "bioc-xml", "xml": "bioc-xml", "json": "bioc-json", "ndjson": "jsonl",
           "standoff": "brat", "pubtator-txt": "pubtator"}


def format_names() -> list[str]:
    return list(FORMATS)


def get_format(name: str) -> Format:
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in FORMATS:
        raise InputError(f"unknown format {name!r}; choose one of {', '.join(FORMATS)}")
    return FORMATS[key]


def guess_format(path: str | os.PathLike, for_writing: bool = False) -> str:
    """The format name for ``path`` from its extension (a folder is brat)."""
    s = str(path)
    if s == "-":
        raise InputError("cannot guess the format of stdin/stdout; name it (--from/--to)")
    p = Path(s)
    if not for_writing and not p.exists():
        raise InputError(f"{s}: no such file or folder")
    if p.is_dir() or s.endswith(("/", os.sep)):
        return "brat"
    low = p.name.lower()
    # longest extension first: ".pubtator.txt" before ".txt"
    for ext, name in sorted(((e, f.name) for f in FORMATS.values() for e in f.extensions),
                            key=lambda x: -len(x[0])):
        if low.endswith(ext):
            return name
    if for_writing and not p.suffix:
        return "brat"  # a new name without an extension: a brat folder
    raise InputError(f"cannot guess the format of {s!r} from its name; name it "
                     f"(one of {', '.join(FORMATS)})")


def read_documents(path: str | os.PathLike, fmt: str | None = None, encoding: str = "utf-8",
                   errors: str = "strict") -> list[Document]:
    """Read all documents of ``path`` (``-`` = stdin) in format ``fmt`` (guessed when None)."""
    if errors not in ("strict", "replace", "ignore"):
        raise InputError(f"unknown errors value {errors!r} (strict, replace or ignore)")
    if str(path) != "-" and not os.path.exists(path):
        raise InputError(f"{path}: no such file or folder")
    f = get_format(fmt) if fmt else get_format(guess_format(path))
    return f.read(path, encoding=encoding, errors=errors)


def write_documents(docs: Iterable[Document], path: str | os.PathLike, fmt: str | None = None) -> None:
    """Write ``docs`` to ``path`` (a folder for brat; ``-`` = stdout) in format ``fmt``."""
    f = get_format(fmt) if fmt else get_format(guess_format(path, for_writing=True))
    f.write(list(docs), path)


__all__ = ["FORMATS", "ALIASES", "Format", "format_names", "get_format", "guess_format",
           "read_documents", "write_documents"]
