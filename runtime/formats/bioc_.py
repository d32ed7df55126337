"""BioC XML and BioC JSON, through the ``bioc`` package.

Written: one BioC document per Document (``<id>`` = the id, infons ``lang`` and ``meta`` (JSON)
when set), one passage with offset 0 holding the whole text, and one annotation per entity with
infons ``type``, ``score`` (``repr`` of the float), ``source``, ``assertion`` (when not
``present``) and ``meta`` (JSON) and a single location. **Offsets are code-point (Python
character) offsets**, not UTF-8 bytes and not UTF-16 units: a BioC file with byte offsets must be
converted first.

Read: passages are placed at their offsets (a gap between passages becomes spaces, so the usual
title passage at 0 and abstract passage at len(title)+1 give ``title + " " + abstract``); a
passage without text but with sentences takes the sentences' texts at their offsets. Annotations
may sit on the document, passages or sentences; their offsets are document offsets. An
annotation with several locations becomes the covering span with ``meta["discontinuous"] = True``
and ``meta["fragments"]``. The annotation's text must equal the text at its location (for several
locations: their texts joined by spaces). Relations are skipped. XML cannot hold control
characters other than tab, CR and LF: such a text is refused when writing.
"""
from __future__ import annotations

import json
import os
import re

import bioc
from bioc import biocjson, biocxml

from ..document import PRESENT, Document, Entity
from ..errors import FormatError
from ._base import check_docs, format_score, make_entity, read_input, write_output

XML_EXTENSIONS = (".xml", ".bioc")
JSON_EXTENSIONS = (".json",)
_XML_DECL_ENCODING = re.compile(r"^(\s*<\?xml[^>]*?)\s+encoding\s*=\s*(['\"])[^'\"]*\2")
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


# -- Documents -> BioC ------------------------------------------------------------------------
def to_bioc(docs, where=None, xml: bool = False) -> bioc.BioCCollection:
    coll = bioc.BioCCollection()
    coll.source = "biotag"
    coll.key = "biotag.key"
    coll.infons["offsets"] = "code points"
    for d in check_docs(docs):
        if xml:
            for s, what in ((d.id, "id"), (d.text, "text")):
                m = _XML_BAD.search(s)
                if m:
                    raise FormatError(f"document {d.id!r}: its {what} contains the character "
                                      f"{m.group()!r}, which XML cannot hold; use bioc-json or "
                                      f"jsonl", where)
        bd = bioc.BioCDocument()
        bd.id = d.id
        if d.lang is not None:
            bd.infons["lang"] = d.lang
        if d.meta:
            bd.infons["meta"] = json.dumps(d.meta, ensure_ascii=False, sort_keys=True)
        p = bioc.BioCPassage()
        p.offset = 0
        p.text = d.text
        for k, e in enumerate(d.sorted_entities(), 1):
            a = bioc.BioCAnnotation()
            a.id = f"T{k}"
            a.infons["type"] = e.type
            if e.score is not None:
                a.infons["score"] = format_score(e.score)
            if e.source is not None:
                a.infons["source"] = e.source
            if e.assertion != PRESENT:
                a.infons["assertion"] = e.assertion
            if e.meta:
                a.infons["meta"] = json.dumps(e.meta, ensure_ascii=False, sort_keys=True)
            a.add_location(bioc.BioCLocation(e.start, e.end - e.start))
            a.text = e.text
            if xml:
                for v in (e.type, e.source or "", a.infons.get("meta", "")):
                    m = _XML_BAD.search(v)
                    if m:
                        raise FormatError(f"document {d.id!r}: entity [{e.start}, {e.end}) has "
                                          f"the character {m.group()!r} in an infon, which XML "
                                          f"cannot hold", where)
            p.add_annotation(a)
        bd.add_passage(p)
        coll.add_document(bd)
    return coll


# -- BioC -> Documents ------------------------------------------------------------------------
def from_bioc(coll, where="<input>") -> list[Document]:
    return [_document(bd, where) for bd in coll.documents]


def _document(bd, where) -> Document:
    doc_id = "" if bd.id is None else str(bd.id)
    pieces = []  # (offset, text)
    anns = list(bd.annotations)
    for p in sorted(bd.passages, key=lambda p: p.offset):
        anns.extend(p.annotations)
        if p.text is not None and p.text != "" or not p.sentences:
            pieces.append((p.offset, p.text or ""))
        for s in p.sentences:
            anns.extend(s.annotations)
            if (p.text is None or p.text == "") and s.text:
                pieces.append((s.offset, s.text))
    text = ""
    for off, t in sorted(pieces, key=lambda x: x[0]):
        if off < len(text):
            if t:
                raise FormatError(f"document {doc_id!r}: a passage at offset {off} overlaps the "
                                  f"text before it (which ends at {len(text)})", where)
            continue
        text += " " * (off - len(text)) + t
    entities = []
    for a in anns:
        entities.append(_entity(a, text, doc_id, where))
    lang = bd.infons.get("lang")
    meta = _json_infon(bd.infons.get("meta"), f"document {doc_id!r}", where)
    return Document(doc_id, text, entities, lang, meta)


def _entity(a, text: str, doc_id: str, where) -> Entity:
    aid = a.id
    typ = a.infons.get("type")
    if not typ:
        raise FormatError(f"document {doc_id!r}: annotation {aid!r} has no 'type' infon", where)
    if not a.locations:
        raise FormatError(f"document {doc_id!r}: annotation {aid!r} has no location", where)
    frags = []
    for loc in a.locations:
        s, n = int(loc.offset), int(loc.length)
        if n <= 0 or s < 0 or s + n > len(text):
            raise FormatError(f"document {doc_id!r}: annotation {aid!r} location "
                              f"[{s}, {s + n}) is empty or lies outside the text "
                              f"(length {len(text)})", where)
        frags.append((s, s + n))
    frags.sort()
    start, end = frags[0][0], frags[-1][1]
    meta = _json_infon(a.infons.get("meta"), f"document {doc_id!r} annotation {aid!r}", where)
    if len(frags) > 1:
        meta["discontinuous"] = True
        meta["fragments"] = [list(f) for f in frags]
        want = " ".join(text[s:e] for s, e in frags)
        if a.text is not None and a.text != want and a.text != text[start:end]:
            raise FormatError(f"document {doc_id!r}: annotation {aid!r} text {a.text!r} does not "
                              f"match the document text {want!r} at {frags}", where)
    expect = a.text if len(frags) == 1 else None
    score = a.infons.get("score")
    try:
        score = None if score in (None, "") else float(score)
    except ValueError:
        raise FormatError(f"document {doc_id!r}: annotation {aid!r} score {score!r} is not a "
                          f"number", where) from None
    ent = make_entity(text, start, end, typ, where=where, doc_id=doc_id, expect=expect,
                      score=score, source=a.infons.get("source"), meta=meta,
                      assertion=a.infons.get("assertion"))
    return ent


def _json_infon(v, what, where) -> dict:
    if not v:
        return {}
    try:
        d = json.loads(v)
    except ValueError:
        d = None
    if not isinstance(d, dict):
        raise FormatError(f"{what}: infon 'meta' is not a JSON object", where)
    return d


# -- XML ---------------------------------------------------------------------------------------
def loads_xml(text: str, where="<input>") -> list[Document]:
    # the text is decoded already: drop a declared encoding so lxml reads it as the UTF-8 we give
    text = _XML_DECL_ENCODING.sub(r"\1", text, count=1)
    try:
        coll = biocxml.loads(text)
    except Exception as exc:  # lxml.etree.XMLSyntaxError and the decoder's KeyError/ValueError
        line = getattr(exc, "lineno", None)
        msg = getattr(exc, "msg", None) or str(exc) or type(exc).__name__
        if isinstance(exc, KeyError):
            msg = f"missing {exc}"
        msg = " ".join(str(msg).split())  # one line
        raise FormatError(f"not valid BioC XML: {msg}", where, line) from None
    return from_bioc(coll, where)


def dumps_xml(docs, where=None) -> str:
    return biocxml.dumps(to_bioc(docs, where, xml=True))


# -- JSON --------------------------------------------------------------------------------------
def loads_json(text: str, where="<input>") -> list[Document]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"not valid JSON ({exc.msg})", where, exc.lineno) from None
    if isinstance(obj, list):  # a bare list of documents
        obj = {"source": "", "date": "", "key": "", "infons": {}, "documents": obj}
    if not isinstance(obj, dict) or "documents" not in obj:
        raise FormatError("not a BioC JSON collection (no 'documents')", where)
    obj = {"source": "", "date": "", "key": "", "infons": {}, **obj}
    try:
        coll = biocjson.decoder.parse_collection(obj)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        what = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise FormatError(f"not a valid BioC JSON collection: {what}", where) from None
    return from_bioc(coll, where)


def dumps_json(docs) -> str:
    return biocjson.dumps(to_bioc(docs), indent=1, ensure_ascii=False) + "\n"


# -- files ---------------------------------------------------------------------------------------
def read_xml(path: str | os.PathLike, encoding: str = "utf-8", errors: str = "strict") -> list[Document]:
    return loads_xml(read_input(path, encoding, errors), path)


def write_xml(docs, path: str | os.PathLike) -> None:
    write_output(path, dumps_xml(docs, path))


def read_json(path: str | os.PathLike, encoding: str = "utf-8", errors: str = "strict") -> list[Document]:
    return loads_json(read_input(path, encoding, errors), path)


def write_json(docs, path: str | os.PathLike) -> None:
    write_output(path, dumps_json(docs))
