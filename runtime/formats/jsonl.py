"""Canonical JSONL: one document per line.

    {"id": "d1", "text": "...", "entities": [{"start": 0, "end": 5, "type": "Disease",
     "text": "...", "score": 0.9}], "lang": "en"}

Offsets are code points, ``end`` exclusive. Optional keys are kept: per entity ``source``,
``assertion`` (``negated``, ``possible``, ``historical`` or ``family``; absent means ``present``)
and ``meta``; per document ``meta``. Any other top-level key of a document (e.g. ``source``) is kept
in ``doc.meta["_extra"]`` and written back at the top level. Blank lines are skipped.
"""
from __future__ import annotations

import json
import os

from ..document import Document
from ..errors import FormatError
from ._base import check_docs, make_entity, parse_score, read_input, write_output

EXTENSIONS = (".jsonl", ".ndjson")
_KNOWN = {"id", "text", "entities", "lang", "meta"}
_ENTITY_KNOWN = {"start", "end", "type", "text", "score", "source", "meta", "assertion"}


def loads(text: str, where="<input>") -> list[Document]:
    docs = []
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise FormatError(f"not a JSON object ({exc.msg} at column {exc.colno})",
                              where, lineno) from None
        docs.append(_document(obj, where, lineno))
    return docs


def _document(obj, where, lineno: int) -> Document:
    if not isinstance(obj, dict):
        raise FormatError(f"expected a JSON object, got {type(obj).__name__}", where, lineno)
    for k in ("id", "text"):
        if k not in obj:
            raise FormatError(f"document has no {k!r} key", where, lineno)
    doc_id, text = obj["id"], obj["text"]
    if not isinstance(doc_id, (str, int)) or isinstance(doc_id, bool):
        raise FormatError(f"document 'id' must be a string, got {doc_id!r}", where, lineno)
    doc_id = str(doc_id)
    if not isinstance(text, str):
        raise FormatError(f"document {doc_id!r}: 'text' must be a string", where, lineno)
    lang = obj.get("lang")
    if lang is not None and not isinstance(lang, str):
        raise FormatError(f"document {doc_id!r}: 'lang' must be a string or null", where, lineno)
    meta = obj.get("meta") or {}
    if not isinstance(meta, dict):
        raise FormatError(f"document {doc_id!r}: 'meta' must be an object", where, lineno)
    meta = dict(meta)
    extra = {k: v for k, v in obj.items() if k not in _KNOWN}
    if extra:
        meta["_extra"] = extra
    ents = obj.get("entities")
    if ents is None:
        ents = []
    if not isinstance(ents, list):
        raise FormatError(f"document {doc_id!r}: 'entities' must be a list", where, lineno)
    entities = []
    for k, e in enumerate(ents, 1):
        if not isinstance(e, dict):
            raise FormatError(f"document {doc_id!r}: entity #{k} is not an object", where, lineno)
        for key in ("start", "end", "type"):
            if key not in e:
                raise FormatError(f"document {doc_id!r}: entity #{k} has no {key!r}", where, lineno)
        etext = e.get("text")
        if etext is not None and not isinstance(etext, str):
            raise FormatError(f"document {doc_id!r}: entity #{k}: 'text' must be a string",
                              where, lineno)
        source = e.get("source")
        if source is not None and not isinstance(source, str):
            raise FormatError(f"document {doc_id!r}: entity #{k}: 'source' must be a string",
                              where, lineno)
        emeta = e.get("meta") or {}
        if not isinstance(emeta, dict):
            raise FormatError(f"document {doc_id!r}: entity #{k}: 'meta' must be an object",
                              where, lineno)
        eextra = {key: v for key, v in e.items() if key not in _ENTITY_KNOWN}
        if eextra:
            emeta = {**emeta, "_extra": eextra}
        entities.append(make_entity(
            text, e["start"], e["end"], e["type"], where=where, line=lineno, doc_id=doc_id,
            expect=etext or None, score=parse_score(e.get("score"), where=where, line=lineno,
                                                    doc_id=doc_id),
            source=source, meta=emeta, assertion=e.get("assertion")))
    return Document(doc_id, text, entities, lang, meta)


def _entity_json(e) -> dict:
    d = e.to_json()
    meta = dict(d.pop("meta", None) or {})
    extra = meta.pop("_extra", None) or {}
    if meta:
        d["meta"] = meta
    for k, v in extra.items():
        d.setdefault(k, v)
    return d


def to_json(doc: Document) -> dict:
    d = {"id": doc.id, "text": doc.text,
         "entities": [_entity_json(e) for e in doc.sorted_entities()], "lang": doc.lang}
    meta = dict(doc.meta)
    extra = meta.pop("_extra", None) or {}
    if meta:
        d["meta"] = meta
    for k, v in extra.items():
        d.setdefault(k, v)
    return d


_LINE_SEPS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


def _one_line(s: str) -> str:
    """JSON text with the Unicode line separators escaped, so that any line splitter
    (``str.splitlines`` too) sees one document per line."""
    for c, esc in _LINE_SEPS.items():
        if c in s:
            s = s.replace(c, esc)
    return s


def dumps(docs) -> str:
    return "".join(_one_line(json.dumps(to_json(d), ensure_ascii=False)) + "\n"
                   for d in check_docs(docs))


def read(path: str | os.PathLike, encoding: str = "utf-8", errors: str = "strict") -> list[Document]:
    return loads(read_input(path, encoding, errors), path)


def write(docs, path: str | os.PathLike) -> None:
    try:
        text = dumps(docs)
    except (TypeError, ValueError) as exc:
        raise FormatError(f"cannot write JSON: {exc}", path) from None
    write_output(path, text)
