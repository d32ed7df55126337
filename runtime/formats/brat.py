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
* Texts are read without newline translation: offsets count ``\\r\\n`` as two characters. A
  non-empty ``.ann`` line that is no annotation (no ``<id><TAB>`` start) continues the quoted text
  of the annotation before it, as some exported corpora write quotes that held a line break.
* One parser, two modes (:func:`scan_ann`, :func:`resolve_mention`): user files are read strictly
  (a quote that differs from the text at its offsets is an error naming ``file:line``); the
  training corpora (``biotag.runtime.corpora``) are read leniently: such quotes are repaired when
  that is unambiguous, else dropped, and both are counted.
* File names: the document id, with ``%``, path separators, control characters and a leading
  ``.`` written as ``%XX`` (read back exactly). Documents are read in file-name order; the
  document order and ``lang``/``meta`` of a document are not carried.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
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


# -- reading .ann: one parser for user files (strict) and the training corpora (lenient) ---------
# An annotation line starts with its id and a TAB: T (text-bound), R, E, A, M, N, * or #. Any other
# non-empty line is not an annotation: in corpora exported from brat such lines are the rest of a
# quoted text that held a line break (CHIA), so they are read as that quote's continuation.
_ANN_LINE = re.compile(r"[TRAEMN*#]\S*\t")


@dataclass
class TextBound:
    """One text-bound annotation (a ``T`` line) and where it lands in the text.

    ``written``: the fragments as written; ``fragments``: as resolved (sorted; in lenient reading
    also moved or trimmed), empty when the annotation is dropped (``problem`` says why)."""

    id: str
    type: str
    line: int
    written: list
    quote: str | None = None               # the quoted text; None when the line has none
    continuation: list = field(default_factory=list)   # stray lines that follow the line
    fragments: list = field(default_factory=list)
    repair: str | None = None              # case | quote_cut | moved | trimmed
    continued: bool = False                # the quote only matches with its continuation lines
    mismatch: bool = False                 # the quote differs from the text at the offsets
    problem: str | None = None             # empty_span | offset_out_of_range |
    detail: str = ""                       # offset_mismatch_ambiguous | offset_mismatch_not_found |
                                           # discontinuous_mismatch | whitespace_only

    @property
    def start(self) -> int:
        return self.fragments[0][0]

    @property
    def end(self) -> int:
        return self.fragments[-1][1]

    @property
    def discontinuous(self) -> bool:
        return len(self.written) > 1


@dataclass
class AnnLines:
    """The lines of one ``.ann`` file, sorted by kind."""

    mentions: list = field(default_factory=list)           # TextBound, in file order
    notes: dict = field(default_factory=dict)              # T id -> [(line, note text)]
    attributes: dict = field(default_factory=dict)         # T id -> {name: value}
    other_lines: int = 0       # relations, events, attributes, normalisations, equivalences, notes
    stray_lines: int = 0       # lines that are no annotation (continuation text of a quote)
    duplicate_ids: int = 0


def scan_ann(ann: str, where="<ann>", strict: bool = True) -> AnnLines:
    """Sort the lines of a ``.ann`` file. Malformed ``T`` lines raise FormatError (file:line). A line
    that is no annotation continues the quote of the annotation line before it; before the first
    annotation line it is an error when ``strict`` (else only counted)."""
    out = AnnLines()
    seen: set = set()
    last: TextBound | None = None
    started = False
    for lineno, line in enumerate(ann.split("\n"), 1):
        line = line[:-1] if line.endswith("\r") else line
        if not line.strip():
            continue
        if not _ANN_LINE.match(line):
            if strict and not started:
                raise FormatError(f"unknown annotation line {line[:40]!r}", where, lineno)
            out.stray_lines += 1
            if last is not None:
                last.continuation.append(line)
            continue
        started = True
        tag = line[0]
        parts = line.split("\t")
        last = None
        if tag == "T":
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
            if tid in seen:
                if strict:
                    raise FormatError(f"duplicate annotation id {tid}", where, lineno)
                out.duplicate_ids += 1
            seen.add(tid)
            last = TextBound(tid, head[0], lineno, frags,
                             "\t".join(parts[2:]) if len(parts) > 2 else None)
            out.mentions.append(last)
            continue
        out.other_lines += 1
        head = parts[1].split()
        if tag == "#":
            if len(head) >= 2 and head[0] == "AnnotatorNotes":
                out.notes.setdefault(head[1], []).append((lineno, "\t".join(parts[2:])))
        elif tag in "AM":
            if len(head) >= 2:
                out.attributes.setdefault(head[1], {})[head[0]] = head[2] if len(head) > 2 else True
    return out


def _joined(text: str, frags) -> str:
    return " ".join(text[a:b] for a, b in frags)


def _quote_agrees(text: str, m: TextBound, frags) -> str | None:
    """How the quote agrees with the text at the offsets (whitespace runs count as one space):
    "exact", "continued" (with its continuation lines), "case" (letter case differs), "cut" (the
    quote is the text up to a line break or a fragment end), or None."""
    q = _norm(m.quote)
    views = [_joined(text, frags)]
    if list(m.written) != list(frags):
        views.append(_joined(text, m.written))
    normed = [_norm(v) for v in views]
    if q in normed:
        return "exact"
    if m.continuation and _norm("\n".join([m.quote, *m.continuation])) in normed:
        return "continued"
    if any(q.casefold() == v.casefold() for v in normed):
        return "case"
    if q:
        for v, order in zip(views, (frags, m.written)):
            cuts = [b.start() for b in _BREAK.finditer(v)]
            pos = -1
            for a, b in order[:-1]:
                pos += b - a + 1
                cuts.append(pos)
            if any(_norm(v[:c]) == q for c in cuts):
                return "cut"
    return None


def _trim(text: str, frags) -> list:
    out = []
    for a, b in frags:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if a < b:
            out.append((a, b))
    return out


def resolve_mention(text: str, m: TextBound, doc_id: str = "", where="<ann>",
                    strict: bool = True) -> TextBound:
    """Place one text-bound annotation on the text (sets ``m.fragments``).

    Strict (user files): offsets outside the text, empty fragments and a quote that differs from
    the text at the offsets raise FormatError. Lenient (training corpora, never raises): a quote
    that differs only in letter case, or was cut at a line break, keeps the offsets; a contiguous
    quote found at the written start or exactly once in the text is moved there; anything else is
    dropped (``m.problem``). Whitespace at the ends of each fragment is trimmed."""
    frags = sorted(m.written)
    if strict:
        for a, b in m.written:
            if b > len(text) or a >= b:
                raise FormatError(f"document {doc_id!r}: {m.id} fragment [{a}, {b}) lies outside "
                                  f"the text (length {len(text)}) or is empty", where, m.line)
        if m.quote is not None:
            how = _quote_agrees(text, m, frags)
            if how not in ("exact", "continued"):
                raise FormatError(f"document {doc_id!r}: {m.id} text {m.quote!r} does not match "
                                  f"the document text {_joined(text, frags)!r} at {frags}",
                                  where, m.line)
            m.continued = how == "continued"
        m.fragments = frags
        return m
    if any(a >= b for a, b in frags):
        m.problem, m.detail = "empty_span", f"{m.id} {m.written}"
        return m
    in_range = all(b <= len(text) for _, b in frags)
    if m.quote is not None:
        m.mismatch = not in_range or m.quote != _joined(text, m.written)
        how = _quote_agrees(text, m, frags) if in_range else None
        if how is None:
            if m.discontinuous:
                m.problem = "discontinuous_mismatch" if in_range else "offset_out_of_range"
                m.detail = f"{m.id} {m.quote!r} at {m.written}"
                return m
            start, quote = m.written[0][0], m.quote
            if quote and text.startswith(quote, start):
                frags = [(start, start + len(quote))]
            else:
                found = [k.start() for k in re.finditer(re.escape(quote), text)] if quote else []
                if len(found) != 1:
                    m.problem = ("offset_mismatch_ambiguous" if found
                                 else "offset_mismatch_not_found")
                    m.detail = f"{m.id} {quote!r} at {start} ({len(found)} occurrences)"
                    return m
                frags = [(found[0], found[0] + len(quote))]
            m.repair = "moved"
            m.detail = f"{m.id} {quote!r} {m.written} -> {frags[0][0]}"
        elif how in ("case", "cut"):
            m.repair = "case" if how == "case" else "quote_cut"
            m.detail = f"{m.id} {m.quote!r} at {m.written}"
        m.continued = how == "continued"
    elif not in_range:
        m.problem, m.detail = "offset_out_of_range", f"{m.id} {m.written} (text length {len(text)})"
        return m
    trimmed = _trim(text, frags)
    if not trimmed:
        m.problem, m.detail = "whitespace_only", f"{m.id} {m.written}"
        return m
    if trimmed != frags and m.repair is None:
        m.repair = "trimmed"
        m.detail = f"{m.id} {frags} -> {trimmed}"
    m.fragments = trimmed
    return m


def parse_ann(text: str, ann: str, doc_id: str, where="<ann>") -> list[Entity]:
    """Entities of one document from its .ann content; ``where`` names the .ann file."""
    scanned = scan_ann(ann, where, strict=True)
    notes, attrs = scanned.notes, scanned.attributes
    out = []
    for m in scanned.mentions:
        resolve_mention(text, m, doc_id, where, strict=True)
        tid, lineno, frags = m.id, m.line, m.fragments
        start, end = m.start, m.end
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
        out.append(make_entity(text, start, end, m.type, where=where, line=lineno, doc_id=doc_id,
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
