"""BRAT standoff: a folder with ``<id>.txt`` (the exact text) and ``<id>.ann`` per document.

Written lines::

    T1<TAB>Disease 10 25<TAB>heart attack
    #1<TAB>AnnotatorNotes T1<TAB>biotag:{"score": 0.93}
    A1<TAB>Assertion T1 negated

* An entity whose text holds line breaks is written, as brat does, as discontinuous fragments
  split at the line breaks (``T2<TAB>Disease 0 5;6 11<TAB>heart attack``). Reading gives the
  covering span with ``meta["discontinuous"] = True`` and ``meta["fragments"]``; any
  discontinuous entity is read that way.
* Score, source and meta (and, when the entity begins or ends with a line break, its exact span)
  go to an ``AnnotatorNotes`` line whose text starts with ``biotag:`` and holds JSON. Other notes
  are kept in ``meta["notes"]``; attribute lines (``A``/``M``) in ``meta["attributes"]``,
  except ``Assertion`` with a known value, which is the entity's assertion (written only when
  not ``present``).
  Relations, events and normalisations are skipped.
* File names: the document id, with ``%``, path separators, control characters and a leading
  ``.`` written as ``%XX`` (read back exactly). Documents are read in file-name order; the
  document order and ``lang``/``meta`` of a document are not carried.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ..document import ASSERTIONS, PRESENT, Document, Entity
from ..errors import FormatError, InputError
from ..textio import atomic_write_text
from ._base import check_docs, check_raw_text, check_type, format_score, make_entity, read_input

EXTENSIONS = (".ann",)
NOTE_PREFIX = "biotag:"
ASSERTION_ATTR = "Assertion"
_BREAK = re.compile(r"[\r\n]+")
_NONBREAK = re.compile(r"[^\r\n]+")
_WS = re.compile(r"\s+")
_UNSAFE = re.compile(r'[%/\\\x00-\x1f\x7f:*?"<>|]')


# -- file names ----------------------------------------------------------------------------------
def id_to_name(doc_id: str) -> str:
    if not doc_id:
        raise FormatError("a document id is empty; brat needs it as a file name")
    name = _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode("utf-8")), doc_id)
    if name.startswith("."):
        name = "%2E" + name[1:]
    return name


def name_to_id(name: str) -> str:
    from urllib.parse import unquote
    return unquote(name, errors="strict") if "%" in name else name


# -- .ann text ------------------------------------------------------------------------------------
def fragments_of(text: str, e: Entity) -> list[tuple[int, int]]:
    """The fragments to write: the entity's own (``meta["fragments"]``) when valid, else its span
    split at line breaks."""
    frags = e.meta.get("fragments") if e.meta else None
    if _valid_fragments(text, e, frags):
        return [(int(a), int(b)) for a, b in frags]
    out = [(e.start + m.start(), e.start + m.end()) for m in _NONBREAK.finditer(e.text)]
    return out or [(e.start, e.end)]


def _valid_fragments(text, e, frags) -> bool:
    if not isinstance(frags, (list, tuple)) or not frags:
        return False
    prev = None
    for f in frags:
        if (not isinstance(f, (list, tuple)) or len(f) != 2
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in f)):
            return False
        a, b = f
        if a >= b or (prev is not None and a <= prev) or _BREAK.search(text[a:b]):
            return False
        prev = b
    return frags[0][0] == e.start and frags[-1][1] == e.end


def format_ann(doc: Document, where=None) -> str:
    lines = []
    note = attr = 0
    for k, e in enumerate(doc.sorted_entities(), 1):
        check_type(e, doc, "brat", where)
        frags = fragments_of(doc.text, e)
        field = " ".join(_BREAK.sub(" ", doc.text[a:b]) for a, b in frags)
        offsets = ";".join(f"{a} {b}" for a, b in frags)
        lines.append(f"T{k}\t{e.type} {offsets}\t{field}")
        extra = {}
        if e.score is not None:
            extra["score"] = e.score
        if e.source is not None:
            extra["source"] = e.source
        meta = {m: v for m, v in (e.meta or {}).items() if m not in ("discontinuous", "fragments")}
        if meta:
            extra["meta"] = meta
        if (frags[0][0], frags[-1][1]) != (e.start, e.end):
            extra["span"] = [e.start, e.end]
        if extra:
            note += 1
            lines.append(f"#{note}\tAnnotatorNotes T{k}\t{NOTE_PREFIX}"
                         + json.dumps(extra, ensure_ascii=True, sort_keys=True))
        if e.assertion != PRESENT:
            attr += 1
            lines.append(f"A{attr}\t{ASSERTION_ATTR} T{k} {e.assertion}")
    return "".join(line + "\n" for line in lines)


def parse_ann(text: str, ann: str, doc_id: str, where="<ann>") -> list[Entity]:
    """Entities of one document from its .ann content; ``where`` names the .ann file."""
    raw: dict[str, dict] = {}
    order = []
    notes: dict[str, list[tuple[int, str]]] = {}
    attrs: dict[str, dict] = {}
    for lineno, line in enumerate(ann.split("\n"), 1):
        line = line[:-1] if line.endswith("\r") else line
        if not line.strip():
            continue
        tag = line[0]
        parts = line.split("\t")
        if tag == "T":
            if len(parts) < 2:
                raise FormatError("text-bound annotation needs 'T<n><TAB>Type start end<TAB>text'",
                                  where, lineno)
            tid = parts[0]
            head = parts[1].split(" ", 1)
            if len(head) != 2 or not head[0]:
                raise FormatError(f"{tid}: expected 'Type start end', got {parts[1]!r}", where, lineno)
            frags = []
            for piece in head[1].split(";"):
                nums = piece.split()
                if len(nums) != 2 or not all(n.isdigit() and n.isascii() for n in nums):
                    raise FormatError(f"{tid}: bad offsets {head[1]!r}", where, lineno)
                frags.append((int(nums[0]), int(nums[1])))
            field = "\t".join(parts[2:]) if len(parts) > 2 else None
            if tid in raw:
                raise FormatError(f"duplicate annotation id {tid}", where, lineno)
            raw[tid] = {"type": head[0], "frags": frags, "field": field, "line": lineno}
            order.append(tid)
        elif tag == "#":
            if len(parts) >= 2:
                head = parts[1].split()
                if len(head) >= 2 and head[0] == "AnnotatorNotes":
                    notes.setdefault(head[1], []).append((lineno, "\t".join(parts[2:])))
        elif tag in "AM":
            if len(parts) >= 2:
                head = parts[1].split()
                if len(head) >= 2:
                    attrs.setdefault(head[1], {})[head[0]] = head[2] if len(head) > 2 else True
        elif tag in "RE*N":
            continue
        else:
            raise FormatError(f"unknown annotation line {line[:40]!r}", where, lineno)
    out = []
    for tid in order:
        r = raw[tid]
        lineno, frags = r["line"], r["frags"]
        for a, b in frags:
            if b > len(text) or a >= b:
                raise FormatError(f"document {doc_id!r}: {tid} fragment [{a}, {b}) lies outside "
                                  f"the text (length {len(text)}) or is empty", where, lineno)
        frags.sort()
        start, end = frags[0][0], frags[-1][1]
        if r["field"] is not None:
            want = " ".join(text[a:b] for a, b in frags)
            if _norm(r["field"]) != _norm(want):
                raise FormatError(f"document {doc_id!r}: {tid} text {r['field']!r} does not match "
                                  f"the document text {want!r} at {frags}", where, lineno)
        meta: dict = {}
        score = source = None
        for nline, note in notes.get(tid, []):
            if note.startswith(NOTE_PREFIX):
                try:
                    extra = json.loads(note[len(NOTE_PREFIX):])
                    if not isinstance(extra, dict):
                        raise ValueError
                except ValueError:
                    raise FormatError(f"{tid}: note after {NOTE_PREFIX!r} is not a JSON object",
                                      where, nline) from None
                score, source = extra.get("score"), extra.get("source")
                meta.update(extra.get("meta") or {})
                span = extra.get("span")
                if span is not None:
                    if (not isinstance(span, list) or len(span) != 2
                            or not all(type(x) is int for x in span)
                            or span[0] > start or span[1] < end):
                        raise FormatError(f"{tid}: note span {span!r} does not cover the fragments",
                                          where, nline)
                    start, end = span
            else:
                meta.setdefault("notes", []).append(note)
        assertion = None
        if tid in attrs:
            own = dict(attrs[tid])
            if own.get(ASSERTION_ATTR) in ASSERTIONS:
                assertion = own.pop(ASSERTION_ATTR)
            if own:
                meta["attributes"] = own
        if len(frags) > 1:
            meta["discontinuous"] = True
            meta["fragments"] = [list(f) for f in frags]
        if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
            raise FormatError(f"{tid}: score must be a number", where, lineno)
        out.append(make_entity(text, start, end, r["type"], where=where, line=lineno, doc_id=doc_id,
                               score=None if score is None else float(score),
                               source=None if source is None else str(source), meta=meta,
                               assertion=assertion))
    return out


def _norm(s: str) -> str:
    return _WS.sub(" ", s).strip()


# -- folders --------------------------------------------------------------------------------------
def read(path: str | os.PathLike, encoding: str = "utf-8", errors: str = "strict") -> list[Document]:
    """A brat folder (every ``*.txt`` with its ``.ann``), or one ``.txt``/``.ann`` file."""
    if str(path) == "-":
        raise InputError("brat is a folder of files; it cannot be read from stdin")
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    if p.is_dir():
        txts = sorted(q for q in p.iterdir() if q.suffix == ".txt" and q.is_file())
        if not txts:
            raise InputError(f"{p}: no .txt files in this brat folder")
        known = {q.stem for q in txts}
        for q in sorted(p.glob("*.ann")):
            if q.stem not in known:
                raise FormatError(f"{q.name} has no matching .txt file", q)
    elif p.suffix in (".txt", ".ann"):
        txts = [p.with_suffix(".txt")]
        if not txts[0].exists():
            raise InputError(f"{txts[0]}: no such file (the text of {p.name})")
    else:
        raise InputError(f"{p}: expected a brat folder or a .txt/.ann file")
    docs = []
    for txt in txts:
        try:
            doc_id = name_to_id(txt.stem)
        except UnicodeDecodeError:
            raise FormatError("file name is not a valid %-encoded document id", txt) from None
        text = read_input(txt, encoding, errors, allow_empty=True)
        ann_path = txt.with_suffix(".ann")
        ann = read_input(ann_path, encoding, errors, allow_empty=True) if ann_path.exists() else ""
        docs.append(Document(doc_id, text, parse_ann(text, ann, doc_id, ann_path)))
    return docs


def write(docs, path: str | os.PathLike) -> None:
    if str(path) == "-":
        raise InputError("brat is a folder of files; it cannot be written to stdout")
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"{p}: exists and is not a folder (brat output is a folder)")
    docs = check_docs(docs)
    names: dict[str, str] = {}
    files = []
    for d in docs:
        name = id_to_name(d.id)
        if name in names:
            raise FormatError(f"two documents with the id {d.id!r}; brat needs unique ids", p)
        names[name] = d.id
        check_raw_text(d, "brat", p)
        files.append((p / (name + ".txt"), d.text))
        files.append((p / (name + ".ann"), format_ann(d, p)))
    try:
        p.mkdir(parents=True, exist_ok=True)
        for f, content in files:
            atomic_write_text(f, content)
    except OSError as exc:
        raise InputError(f"{p}: cannot write ({exc.strerror or exc})") from None
    except UnicodeEncodeError:
        raise FormatError("a text cannot be encoded as UTF-8 (a lone surrogate?)", p) from None
