"""CSV: one row per entity, and one *document row* per document that carries its text.

Header (always written, required when reading)::

    doc_id,start,end,type,text,score,source,lang,assertion

* A document row has ``start`` empty: ``text`` is the whole document text and ``lang`` its
  language (``type``, ``score``, ``source`` empty). It is written before the document's entities.
* An entity row has ``start``, ``end``, ``type``, the entity's ``text``, and ``score`` (``repr``
  of the float, so it reads back exactly) and ``source`` when set; ``lang`` is empty;
  ``assertion`` is ``present``, ``negated``, ``possible``, ``historical`` or ``family``.
* Fields are quoted per RFC 4180 (rows end with CRLF; a text with line breaks, commas or quotes
  is quoted), so any text round-trips exactly. To list only entities, keep the rows whose
  ``start`` is not empty.

Reading: columns are found by header name (extra columns are ignored; ``score``, ``source``,
``lang`` and ``assertion`` may be missing; an empty or missing assertion is ``present``). Every
document needs its document row; document ids must be unique.
Document and entity ``meta`` are not carried.
"""
from __future__ import annotations

import csv
import io
import os

from ..document import Document
from ..errors import FormatError
from ._base import check_docs, check_raw_text, format_score, make_entity, parse_score, read_input, write_output

EXTENSIONS = (".csv",)
COLUMNS = ("doc_id", "start", "end", "type", "text", "score", "source", "lang", "assertion")
_REQUIRED = ("doc_id", "start", "end", "type", "text")


def dumps(docs, where=None) -> str:
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(COLUMNS)
    seen = set()
    for d in check_docs(docs):
        if d.id in seen:
            raise FormatError(f"two documents with the id {d.id!r}; CSV needs unique ids", where)
        seen.add(d.id)
        check_raw_text(d, "csv", where)
        w.writerow([d.id, "", "", "", d.text, "", "", d.lang or "", ""])
        for e in d.sorted_entities():
            w.writerow([d.id, e.start, e.end, e.type, e.text, format_score(e.score),
                        e.source or "", "", e.assertion])
    return buf.getvalue()


def loads(text: str, where="<input>") -> list[Document]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise FormatError("no header line", where, 1) from None
    except csv.Error as exc:
        raise FormatError(f"not valid CSV ({exc})", where, 1) from None
    cols = {name.strip(): i for i, name in enumerate(header)}
    missing = [c for c in _REQUIRED if c not in cols]
    if missing:
        raise FormatError(f"header lacks column(s) {', '.join(missing)} (expected "
                          f"{','.join(COLUMNS)})", where, 1)
    texts: dict[str, tuple[str, str | None]] = {}
    rows: dict[str, list] = {}
    first_line: dict[str, int] = {}
    line = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise FormatError(f"not valid CSV ({exc})", where, line) from None
        if not row or row == [""]:
            line = reader.line_num + 1
            continue

        def get(name, row=row):
            i = cols.get(name)
            return row[i] if i is not None and i < len(row) else ""

        doc_id = get("doc_id")
        if not doc_id:
            raise FormatError("empty doc_id", where, line)
        first_line.setdefault(doc_id, line)
        if get("start").strip() == "":
            if doc_id in texts:
                raise FormatError(f"a second document row for {doc_id!r}", where, line)
            texts[doc_id] = (get("text"), get("lang") or None)
            rows.setdefault(doc_id, [])
        else:
            rows.setdefault(doc_id, []).append((line, row, get))
        line = reader.line_num + 1
    docs = []
    for doc_id, ents in rows.items():
        if doc_id not in texts:
            raise FormatError(f"document {doc_id!r} has entities but no document row (a row with "
                              f"empty start holding the text)", where, first_line[doc_id])
        text, lang = texts[doc_id]
        entities = [
            make_entity(text, get("start"), get("end"), get("type"), where=where, line=ln,
                        doc_id=doc_id, expect=get("text") or None,
                        score=parse_score(get("score"), where=where, line=ln, doc_id=doc_id),
                        source=get("source") or None, assertion=get("assertion"))
            for ln, row, get in ents]
        docs.append(Document(doc_id, text, entities, lang))
    return docs


def read(path: str | os.PathLike, encoding: str = "utf-8", errors: str = "strict") -> list[Document]:
    return loads(read_input(path, encoding, errors), path)


def write(docs, path: str | os.PathLike) -> None:
    write_output(path, dumps(docs, path))
