"""PubTator: ``id|t|title``, ``id|a|abstract``, then one line per mention
``id<TAB>start<TAB>end<TAB>mention<TAB>type[<TAB>score-or-id[<TAB>more...]]``, relation lines
``id<TAB>CID<TAB>D1<TAB>D2``, and a blank line after each document.

Mapping to a Document: ``text = title + "\\n" + abstract``. PubTator's offsets run over
``title + " " + abstract``; the separator is one character either way, so offsets are the same.
A document without an ``|a|`` line has ``text = title``. Writing is the reverse: the text up to the
first line feed is the title, the rest the abstract; a text without a line feed is written
without an ``|a|`` line. A text with more than one line feed, or with a carriage return, cannot be
written (FormatError), nor an id containing ``|``, a tab or a line break.

The sixth field is read as a score when it is a number with a decimal point or an exponent
(``0.93``, ``1.0``, ``1e-05``; what ``repr(float)`` writes) and otherwise kept as ``meta["id"]``
(``D009270``, ``-1``, ``9606``, ``D014786|D006311``); fields after it go to ``meta["extra"]``. Writing puts the score there when
the entity has one, else ``meta["id"]``. Relation lines are kept in ``doc.meta["relations"]`` as
lists of fields and written back. ``lang`` and other meta are not carried.

One line parser, two modes (:func:`scan`): user files are read strictly (:func:`read`,
:func:`loads`); the training corpora (``biotag.runtime.corpora``) are read leniently and build
their own documents from the scanned lines (text = title + " " + abstract, offset repairs).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Iterator

from ..document import Document
from ..errors import FormatError
from ._base import (check_docs, check_raw_text, check_type, format_score, make_entity, read_input,
                    shorten, write_output)

EXTENSIONS = (".pubtator", ".pubtator.txt")
_HEAD = re.compile(r"([^|\t\n]*)\|([ta])\|(.*)", re.S)
_INT = re.compile(r"[0-9]+\Z")
_LENIENT_INT = re.compile(r"\s*-?\d+\s*")
_SCORE = re.compile(r"-?(?:(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+|inf)\Z"
                    r"|nan\Z")


def _is_score(s: str) -> bool:
    return bool(_SCORE.match(s))


@dataclass
class MentionLine:
    """One mention line: its offsets as written, its tab-separated fields and the whole line (a
    mention may hold tabs; the strict reader finds its end by the document text)."""

    line: int
    start: int
    end: int
    fields: list
    raw: str


@dataclass
class RawDoc:
    """The lines of one document. ``title`` is empty for a lenient document that starts at its
    ``|a|`` line; ``relations``: the fields after the id of each relation line."""

    id: str
    line: int                                   # the line that starts the document
    title: str = ""
    abstract: str | None = None
    mentions: list = field(default_factory=list)
    relations: list = field(default_factory=list)


def scan(text: str, where="<input>", strict: bool = True) -> Iterator[RawDoc]:
    """The documents of PubTator ``text``, each yielded when its last line has been read.

    A ``|t|`` line starts a document, a blank line ends it; every other line must carry the
    document's id. A mention line has integer start and end fields; malformed lines raise
    FormatError (file:line).

    Strict (user files): the id may be empty; an ``|a|`` line must follow its ``|t|`` line; a
    mention line has at least 5 fields with ASCII-digit offsets, any other line whose second field
    is not a number is a relation. Lenient (training corpora): the id is not empty; a document may
    start at its ``|a|`` line (its title is then empty); a line of 4 fields whose second is not a
    number is a relation, any other line a mention of 5 to 7 fields with a non-empty type whose
    offsets may carry a sign and surrounding whitespace."""
    cur: RawDoc | None = None
    for lineno, line in enumerate(text.split("\n"), 1):
        if line.endswith("\r"):
            line = line[:-1]
        if not line.strip():
            if cur is not None:
                yield cur
                cur = None
            continue
        m = _HEAD.fullmatch(line)
        if m and (strict or m.group(1)):
            doc_id, kind, body = m.groups()
            if kind == "t":
                if cur is not None:
                    yield cur
                cur = RawDoc(doc_id, lineno, title=body)
                continue
            if strict:
                if cur is None or cur.id != doc_id or cur.abstract is not None or cur.mentions:
                    raise FormatError(f"|a| line for document {doc_id!r} does not follow its |t| "
                                      f"line", where, lineno)
            else:
                if cur is None:
                    cur = RawDoc(doc_id, lineno, title="")
                if cur.id != doc_id:
                    raise FormatError(f"abstract of PMID {doc_id} inside document {cur.id}",
                                      where, lineno)
                if cur.abstract is not None or cur.mentions:
                    raise FormatError(f"second or misplaced abstract line for PMID {doc_id}",
                                      where, lineno)
            cur.abstract = body
            continue
        fields = line.split("\t")
        if cur is None:
            raise FormatError(f"expected an 'id|t|title' line, got {line[:60]!r}" if strict
                              else "annotation line before a 'PMID|t|title' line", where, lineno)
        if fields[0] != cur.id:
            raise FormatError(f"line for document {fields[0]!r} inside document {cur.id!r} "
                              f"(missing blank line?)" if strict
                              else f"line of PMID {fields[0]!r} inside document {cur.id}",
                              where, lineno)
        if strict:
            if len(fields) >= 3 and _INT.match(fields[1]) and _INT.match(fields[2]):
                if len(fields) < 5:
                    raise FormatError("a mention needs id, start, end, mention, type", where,
                                      lineno)
                cur.mentions.append(MentionLine(lineno, int(fields[1]), int(fields[2]), fields,
                                                line))
            elif len(fields) >= 2 and fields[1] and not _INT.match(fields[1]):
                cur.relations.append(fields[1:])
            else:
                raise FormatError(f"not a PubTator line: {line[:60]!r}", where, lineno)
            continue
        if len(fields) == 4 and not re.fullmatch(r"\d+", fields[1]):
            cur.relations.append(fields[1:])
            continue
        if len(fields) not in (5, 6, 7):
            raise FormatError(f"expected a mention line with 6 or 7 tab-separated fields, "
                              f"found {len(fields)}", where, lineno)
        start = _lenient_int(fields[1], "start", where, lineno)
        end = _lenient_int(fields[2], "end", where, lineno)
        if not fields[4]:
            raise FormatError("mention line without a type", where, lineno)
        cur.mentions.append(MentionLine(lineno, start, end, fields, line))
    if cur is not None:
        yield cur


def _lenient_int(v: str, what: str, where, line: int) -> int:
    if _LENIENT_INT.fullmatch(v):
        return int(v)
    raise FormatError(f"{what} must be an integer, found {shorten(repr(v))}", where, line)


def loads(text: str, where="<input>") -> list[Document]:
    raw = list(scan(text, where, strict=True))  # every line is checked before any mention
    return [_document(d, where) for d in raw]


def _document(d: RawDoc, where) -> Document:
    if d.abstract is None:
        text = pub = d.title
    else:
        text = d.title + "\n" + d.abstract
        pub = d.title + " " + d.abstract
    entities = []
    for mention in d.mentions:
        lineno, fields, line = mention.line, mention.fields, mention.raw
        s, e = mention.start, mention.end
        if not (0 <= s < e <= len(pub)):
            raise FormatError(f"document {d.id!r}: mention [{s}, {e}) lies outside the text "
                              f"(length {len(pub)}) or is empty", where, lineno)
        want = pub[s:e]
        head = f"{fields[0]}\t{fields[1]}\t{fields[2]}\t"
        rest = line[len(head):]
        if rest.startswith(want + "\t"):  # the mention itself may hold tabs
            tail = rest[len(want) + 1:].split("\t")
        elif fields[3] == want:
            tail = fields[4:]
        else:
            raise FormatError(f"document {d.id!r}: mention {fields[3]!r} does not match the "
                              f"document text {want!r} at [{s}, {e})", where, lineno)
        if not tail or not tail[0]:
            raise FormatError(f"document {d.id!r}: mention at [{s}, {e}) has no type", where, lineno)
        typ, score, meta = tail[0], None, {}
        if len(tail) > 1:
            if _is_score(tail[1]):
                score = float(tail[1])
            else:
                meta["id"] = tail[1]
        if len(tail) > 2:
            meta["extra"] = tail[2:]
        entities.append(make_entity(text, s, e, typ, where=where, line=lineno, doc_id=d.id,
                                    score=score, meta=meta))
    meta = {"relations": d.relations} if d.relations else {}
    return Document(d.id, text, entities, None, meta)


def format_doc(doc: Document, where=None) -> str:
    if not doc.id or any(c in doc.id for c in "|\t\r\n"):
        raise FormatError(f"document id {doc.id!r} cannot be written in PubTator (empty, or holds "
                          f"'|', a tab or a line break)", where)
    check_raw_text(doc, "pubtator", where)
    if "\r" in doc.text:
        raise FormatError(f"document {doc.id!r}: the text holds a carriage return; PubTator has "
                          f"a title line and an abstract line only (use jsonl or brat)", where)
    if doc.text.count("\n") > 1:
        raise FormatError(f"document {doc.id!r}: the text has {doc.text.count(chr(10)) + 1} lines; "
                          f"PubTator holds a title line and one abstract line (use jsonl or brat)",
                          where)
    if "\n" in doc.text:
        title, abstract = doc.text.split("\n", 1)
        out = [f"{doc.id}|t|{title}\n", f"{doc.id}|a|{abstract}\n"]
    else:
        out = [f"{doc.id}|t|{doc.text}\n"]
    pub = doc.text.replace("\n", " ")
    for e in doc.sorted_entities():
        check_type(e, doc, "pubtator", where)
        fields = [doc.id, str(e.start), str(e.end), pub[e.start:e.end], e.type]
        meta = e.meta or {}
        extra = meta.get("extra") if isinstance(meta.get("extra"), list) else []
        if e.score is not None:
            fields.append(format_score(e.score))
        elif meta.get("id") is not None or extra:
            fields.append(str(meta.get("id", "")))
        fields.extend(str(x) for x in extra)
        for f in fields[5:]:
            if any(c in f for c in "\t\r\n"):
                raise FormatError(f"document {doc.id!r}: entity [{e.start}, {e.end}) has a tab or "
                                  f"line break in its id or extra fields", where)
        out.append("\t".join(fields) + "\n")
    for rel in doc.meta.get("relations") or []:
        fields = [doc.id] + [str(x) for x in rel]
        if any(c in f for f in fields for c in "\t\r\n"):
            raise FormatError(f"document {doc.id!r}: a relation field holds a tab or line break",
                              where)
        out.append("\t".join(fields) + "\n")
    return "".join(out)


def dumps(docs, where=None) -> str:
    return "".join(format_doc(d, where) + "\n" for d in check_docs(docs))


def read(path: str | os.PathLike, encoding: str = "utf-8", errors: str = "strict") -> list[Document]:
    return loads(read_input(path, encoding, errors), path)


def write(docs, path: str | os.PathLike) -> None:
    write_output(path, dumps(docs, path))
