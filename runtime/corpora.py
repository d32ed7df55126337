"""Readers for the training corpora in their original formats, a registry of the corpora under
``shared/data``, and the ``biotag data`` command (statistics, word-boundary check, export).

Every reader yields :class:`~biotag.runtime.document.Document` objects with exact code-point
offsets. Token-based formats have no original text, so the text is *reconstructed*: tokens joined
by single spaces (Chinese character BIO: joined by nothing). Entity types are canonical (see
``labels.py`` and :data:`EXTRA_LABEL_MAP`); the corpus's own type is kept in
``entity.meta["orig_type"]``.

Units: one Document per sentence (IOB/BIO/CoNLL/GENIA), per record (CMeEE JSON, ChineseBLUE) or
per document (BRAT: one per ``.txt`` file, PubTator: one per abstract, text = title + " " +
abstract). For the two document formats ``doc.segments`` holds the *line* spans (BRAT: each
non-empty line, i.e. title and abstract; PubTator: title and abstract), not sentences.

Repairs (all counted in a :class:`ReadReport`, never silent):

* Offsets that do not match the mention text (ChineseBLUE, CMeEE, PubTator, BRAT): when only the
  letter case differs, the span is kept and the entity takes the text's characters
  (``meta["repair"] = "case"``, original in ``meta["mention"]``); when the mention occurs exactly
  once in the text, the entity is moved there (``"moved"``); otherwise it is dropped
  (``"ambiguous"`` / ``"not_found"``).
* BIO: an ``I-X`` after ``O`` or at the sentence start starts a mention (the usual lenient rule).
  An ``I-X`` right after a tag of another type also starts a mention in every IOB/CoNLL reader
  (the README counting rule). In the character BIO of ``cmeee/train_flat.bio`` these runs are the
  remains of nested entities whose inner tags were written over the outer ``sym`` span, so that
  reader repairs them (``continuation="extend"``): walking back over the directly adjacent
  top-level mentions, the run is *merged* into the first mention of its own type it meets
  (``B-sym I-sym B-bod I-bod I-sym`` -> one sym over all five characters, the bod nested inside), or,
  when it meets ``O`` or the sentence start first, *extended* back to the start of the adjacent
  chain (``B-bod I-bod I-sym`` -> sym over all three). Flattening the nested CMeEE JSON the same
  way and repairing it recovers 97.4 % of the resulting spans exactly (83.4 % without repair).
* BRAT is read by the lenient mode of :mod:`biotag.runtime.formats.brat` (the one brat parser):
  texts without newline translation (CRLF counts as two characters), relation, event, attribute,
  normalisation, equivalence and note lines skipped, stray lines taken as the continuation of the
  quote before them. Discontinuous entities (``T1\\ttype 0 5;10 15\\ttext``) keep their covering
  span with ``meta["discontinuous"] = True`` and ``meta["fragments"]``. A quote that differs only
  in letter case or was cut at a line break keeps its offsets (``"case"``, ``"quote_cut"``);
  whitespace at a span's ends is trimmed (``"trimmed"``).
* The clinical corpora (:data:`CLINICAL`: MACCROBAT2020, CHIA) yield only the types that
  ``labels.LABEL_MAP`` maps (``only_mapped``); the others are counted as ``type_left_out``.

Malformed input raises :class:`~biotag.runtime.errors.FormatError` naming ``file:line``; empty
files raise :class:`~biotag.runtime.errors.InputError`.
"""
from __future__ import annotations

import json
import os
import re
import sys
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .document import Document, Entity, Segment
from .errors import FormatError, InputError
from .labels import LABEL_MAP
from .textio import decode_text, read_bytes, read_text
from .words import segment_words

__all__ = [
    "ReadReport", "CorpusSpec", "CORPORA", "CLINICAL", "EXTRA_LABEL_MAP", "FORMATS", "canonical_type",
    "default_data_dir", "resolve_data_dir", "get_corpus", "iter_corpora", "iter_documents", "load", "read_file",
    "read_iob_tsv", "read_conll", "read_char_bio", "read_brat", "read_brat_document", "mapped_types",
    "read_genia_jsonl", "read_cmeee_json", "read_chineseblue_jsonl", "read_pubtator",
    "doc_stats", "corpus_stats", "word_boundary_report", "add_cli",
]

# Mappings for corpora that labels.LABEL_MAP does not cover (the extra/ corpora). Types not
# listed pass through unchanged. Injective within each corpus, like LABEL_MAP.
EXTRA_LABEL_MAP: dict[str, dict[str, str]] = {
    "bionlp11id": {"Organism": "Species"},
    "bionlp13cg": {"Gene_or_gene_product": "Gene", "Simple_chemical": "Chemical",
                   "Organism": "Species", "Cancer": "Disease"},
    "bionlp13pc": {"Gene_or_gene_product": "Gene", "Simple_chemical": "Chemical"},
}


def canonical_type(label_key: str, original: str) -> str:
    """Canonical type of a corpus's own type (labels.LABEL_MAP, then EXTRA_LABEL_MAP, else as is)."""
    if label_key in LABEL_MAP:
        return LABEL_MAP[label_key].get(original, original)
    return EXTRA_LABEL_MAP.get(label_key, {}).get(original, original)


# ---------------------------------------------------------------------------------------------
# Read report
# ---------------------------------------------------------------------------------------------
@dataclass
class ReadReport:
    """What a reader saw and did: mentions counted by the README rule, repairs, drops."""

    corpus: str = ""
    split: str = ""
    mentions: int = 0                      # raw mentions (README counting rule), kept or not
    types: Counter = field(default_factory=Counter)   # raw mentions per original type
    repaired: int = 0
    dropped: int = 0
    counters: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    max_examples: int = 20

    def mention(self, orig_type: str, n: int = 1) -> None:
        self.mentions += n
        self.types[orig_type] += n

    def count(self, kind: str, n: int = 1) -> None:
        self.counters[kind] += n

    def _example(self, kind: str, where: str, what: str) -> None:
        if len(self.examples) < self.max_examples:
            self.examples.append(f"{kind}: {where}: {what}")

    def repair(self, kind: str, where: str = "", what: str = "") -> None:
        self.repaired += 1
        self.counters[kind] += 1
        self._example(kind, where, what)

    def drop(self, kind: str, where: str = "", what: str = "") -> None:
        self.dropped += 1
        self.counters[kind] += 1
        self._example(kind, where, what)

    def to_json(self) -> dict:
        return {"corpus": self.corpus, "split": self.split, "mentions": self.mentions,
                "types": dict(self.types.most_common()), "repaired": self.repaired,
                "dropped": self.dropped, "counters": dict(sorted(self.counters.items())),
                "examples": list(self.examples)}


def _report(report: ReadReport | None) -> ReadReport:
    return report if report is not None else ReadReport()


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def _lines(path: Path, text: str | None = None) -> list[str]:
    """Lines split on LF only (never on U+2028, U+0085 ... which may be data), CR stripped."""
    if text is None:
        text = read_text(path)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def _where(path, line) -> str:
    return f"{path}:{line}" if line is not None else str(path)


def _short(s: str, n: int = 60) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _occurrences(text: str, sub: str) -> list[int]:
    out, i = [], text.find(sub)
    while i >= 0:
        out.append(i)
        i = text.find(sub, i + 1)
    return out


def _resolve_span(text: str, start: int, mention: str, report: ReadReport, where: str
                  ) -> tuple[int, int, str | None] | None:
    """Check ``text[start:start+len(mention)] == mention``; repair (case / move) or drop.

    Returns (start, end, repair-kind or None) or None when the mention is dropped (counted)."""
    end = start + len(mention)
    if not mention:
        report.drop("empty_mention", where, "empty mention")
        return None
    if 0 <= start and end <= len(text):
        got = text[start:end]
        if got == mention:
            return start, end, None
        if got.lower() == mention.lower() or got.casefold() == mention.casefold():
            report.repair("offset_mismatch_case", where, f"{mention!r} -> {got!r} at {start}")
            return start, end, "case"
    occ = _occurrences(text, mention)
    if len(occ) == 1:
        report.repair("offset_mismatch_moved", where, f"{mention!r} {start} -> {occ[0]}")
        return occ[0], occ[0] + len(mention), "moved"
    kind = "offset_mismatch_ambiguous" if occ else "offset_mismatch_not_found"
    report.drop(kind, where, f"{mention!r} at {start} ({len(occ)} occurrences)")
    return None


def _entity(text: str, start: int, end: int, orig_type: str, label_key: str, **meta) -> Entity:
    m = {"orig_type": orig_type}
    m.update({k: v for k, v in meta.items() if v is not None})
    return Entity(start, end, canonical_type(label_key, orig_type), text[start:end], meta=m)


def _sort_key(e: Entity):
    return (e.start, -e.end, e.type)


# ---------------------------------------------------------------------------------------------
# Token / tag sequences (IOB TSV, CoNLL, character BIO)
# ---------------------------------------------------------------------------------------------
_TAG_CACHE: dict[tuple[str, str | None], tuple[str, str]] = {}


def _parse_tag(tag: str, bare_type: str | None, path, line) -> tuple[str, str]:
    key = (tag, bare_type)
    hit = _TAG_CACHE.get(key)
    if hit is not None:
        return hit
    if tag == "O":
        res = ("O", "")
    elif tag in ("B", "I"):
        if bare_type is None:
            raise FormatError(f"untyped tag {tag!r} (this reader expects B-<type>/I-<type>)", path, line)
        res = (tag, bare_type)
    elif len(tag) > 2 and tag[0] in "BI" and tag[1] == "-" and tag[2:].strip():
        res = (tag[0], tag[2:])
    else:
        raise FormatError(f"invalid tag {_short(tag)!r} (expected O, B-<type> or I-<type>)", path, line)
    if len(_TAG_CACHE) < 10000:
        _TAG_CACHE[key] = res
    return res


def _decode_tags(tags: list[tuple[str, str]], continuation: str = "new"
                 ) -> list[list]:
    """Mentions [start, end, type, how, absorbed] over token indices.

    A run starts at B-X or at I-X following O / another type / the start (the README rule). With
    ``continuation="extend"``, an I-X run directly after another type's tag is merged into the
    nearest adjacent top-level X mention or extended back over the adjacent chain (see module doc).
    ``how``: None, "i_start" (I- after O or at the start), "i_continuation" (I-X after another
    type, kept as its own mention), "extended", "merged" (the run merged into an earlier mention,
    which gets ``absorbed = True``).
    """
    out: list[list] = []
    top: list[list] = []
    i, n = 0, len(tags)
    while i < n:
        p, t = tags[i]
        if p == "O":
            i += 1
            continue
        j = i + 1
        while j < n and tags[j][0] == "I" and tags[j][1] == t:
            j += 1
        if p == "B":
            x = [i, j, t, None, False]
            out.append(x)
            top.append(x)
        elif i == 0 or tags[i - 1][0] == "O":
            x = [i, j, t, "i_start", False]
            out.append(x)
            top.append(x)
        elif continuation != "extend":
            x = [i, j, t, "i_continuation", False]
            out.append(x)
            top.append(x)
        else:
            k, start, merged = len(top) - 1, i, False
            while k >= 0 and top[k][1] == start:
                if top[k][2] == t:
                    top[k][1] = j
                    top[k][4] = True
                    out.append([i, j, t, "merged", False])  # marker only, skipped by the caller
                    del top[k + 1:]
                    merged = True
                    break
                start = top[k][0]
                k -= 1
            if not merged:
                x = [start, j, t, "extended", False]
                del top[k + 1:]
                top.append(x)
                out.append(x)
        i = j
    return out


def _sentence_doc(tokens: list[str], tags: list[tuple[str, str]], *, sep: str, corpus: str,
                  split: str, label_key: str, lang: str, index: int, line: int, path,
                  report: ReadReport, continuation: str = "new", meta: dict | None = None) -> Document:
    text = sep.join(tokens)
    starts, pos, lsep = [], 0, len(sep)
    for tok in tokens:
        starts.append(pos)
        pos += len(tok) + lsep
    ents = []
    where = _where(path, line)
    for s, e, t, how, absorbed in _decode_tags(tags, continuation):
        report.mention(t)
        if how == "merged":
            report.repair("bio_continuation_merged", where, f"I-{t} run at token {s}")
            continue
        cs, ce = starts[s], starts[e - 1] + len(tokens[e - 1])
        if how == "extended":
            report.repair("bio_continuation_extended", where, f"I-{t} run at token {s}")
        elif how == "i_start":
            report.count("bio_i_start")
        elif how == "i_continuation":
            report.count("bio_i_after_other_type")
        repair = "merged" if absorbed else ("extended" if how == "extended" else None)
        ents.append(_entity(text, cs, ce, t, label_key, repair=repair))
    ents.sort(key=_sort_key)
    m = {"corpus": corpus, "split": split, "line": line}
    if meta:
        m.update(meta)
    return Document(f"{corpus}/{split}/{index}", text, ents, lang, m)


def _check_token(tok: str, path, line) -> None:
    if tok == "":
        raise FormatError("empty token", path, line)


def read_iob_tsv(path, *, corpus: str = "iob", split: str = "", label_key: str | None = None,
                 lang: str = "en", bare_type: str | None = None, columns: int | None = 2,
                 report: ReadReport | None = None) -> Iterator[Document]:
    """IOB TSV (``token<TAB>tag``, blank line between sentences); one Document per sentence.

    ``columns``: the exact number of tab-separated fields (None: any >= 2; token = first field,
    tag = last). ``bare_type``: the type of bare ``B``/``I`` tags (s800: "Species")."""
    return _read_columns(path, sep="\t", corpus=corpus, split=split,
                         label_key=label_key or corpus, lang=lang, bare_type=bare_type,
                         columns=columns, conll=False, report=_report(report))


def read_conll(path, *, corpus: str = "conll", split: str = "", label_key: str | None = None,
               lang: str = "en", report: ReadReport | None = None) -> Iterator[Document]:
    """CoNLL columns separated by spaces (``index token POS chunk NER`` or ``token ... NER``);
    ``-DOCSTART-`` lines are skipped. The tag is the last field."""
    return _read_columns(path, sep=None, corpus=corpus, split=split, label_key=label_key or corpus,
                         lang=lang, bare_type=None, columns=None, conll=True,
                         report=_report(report))


def _read_columns(path, *, sep, corpus, split, label_key, lang, bare_type, columns, conll,
                  report) -> Iterator[Document]:
    path = Path(path)
    lines = _lines(path)
    tokens: list[str] = []
    tags: list[tuple[str, str]] = []
    first = 0
    index = 0
    docstart_only = False
    for no, line in enumerate(lines + [""], 1):
        if not line.strip():
            if tokens:
                report.count("tokens", len(tokens))
                yield _sentence_doc(tokens, tags, sep=" ", corpus=corpus, split=split,
                                    label_key=label_key, lang=lang, index=index, line=first,
                                    path=path, report=report)
                index += 1
                tokens, tags = [], []
            docstart_only = False
            continue
        fields = line.split(sep) if sep else line.split()
        if conll and len(fields) >= 2 and "-DOCSTART-" in fields[:2]:
            if tokens:
                raise FormatError("-DOCSTART- inside a sentence", path, no)
            report.count("docstart")
            docstart_only = True
            continue
        if docstart_only:
            raise FormatError("-DOCSTART- line followed by tokens without an empty line", path, no)
        if columns is not None and len(fields) != columns:
            raise FormatError(f"expected {columns} {'tab-' if sep == chr(9) else ''}separated "
                              f"fields, found {len(fields)}", path, no)
        if len(fields) < 2:
            raise FormatError(f"expected at least 2 fields (token and tag), found {len(fields)}",
                              path, no)
        if conll and len(fields) == 5 and fields[0].isdigit():
            tok = fields[1]
        else:
            tok = fields[0]
        _check_token(tok, path, no)
        if not tokens:
            first = no
        tokens.append(tok)
        tags.append(_parse_tag(fields[-1].strip(), bare_type, path, no))


_CHAR_LINE = re.compile(r"(.) (\S+)", re.S)


def read_char_bio(path, *, corpus: str = "char-bio", split: str = "", label_key: str | None = None,
                  lang: str = "zh", continuation: str = "extend",
                  report: ReadReport | None = None) -> Iterator[Document]:
    """Character BIO (``<char> <tag>`` per line, blank line between sentences), text joined by
    nothing. ``continuation="extend"`` repairs I-X runs after another type (see module doc);
    ``"new"`` keeps them as mentions of their own (the README counting rule)."""
    path = Path(path)
    report = _report(report)
    label_key = label_key or corpus
    data = read_bytes(path)
    # Decode without stripping a leading U+FEFF: here it may be the first character of the data.
    text = decode_text(data, str(path), encoding="utf_8")
    if text.startswith("\ufeff") and not _CHAR_LINE.fullmatch(text.split("\n", 1)[0].rstrip("\r")):
        text = text[1:]
    lines = _lines(path, text)
    chars: list[str] = []
    tags: list[tuple[str, str]] = []
    first = index = 0
    for no, line in enumerate(lines + [""], 1):
        if line == "":
            if chars:
                report.count("tokens", len(chars))
                yield _sentence_doc(chars, tags, sep="", corpus=corpus, split=split,
                                    label_key=label_key, lang=lang, index=index, line=first,
                                    path=path, report=report, continuation=continuation)
                index += 1
                chars, tags = [], []
            continue
        m = _CHAR_LINE.fullmatch(line)
        if not m:
            raise FormatError(f"expected '<char> <tag>', found {_short(line)!r}", path, no)
        if not chars:
            first = no
        chars.append(m.group(1))
        tags.append(_parse_tag(m.group(2), None, path, no))


# ---------------------------------------------------------------------------------------------
# BRAT standoff
# ---------------------------------------------------------------------------------------------
# TextBound.repair -> the ReadReport counter of that repair
_BRAT_REPAIR_KIND = {"case": "offset_mismatch_case", "moved": "offset_mismatch_moved",
                     "quote_cut": "quote_cut_at_line_break", "trimmed": "span_whitespace_trimmed"}


def mapped_types(label_key: str) -> set[str]:
    """The corpus types that have a canonical type (labels.LABEL_MAP, else EXTRA_LABEL_MAP)."""
    return set(LABEL_MAP.get(label_key) or EXTRA_LABEL_MAP.get(label_key) or {})


def read_brat_document(txt_path, ann_path=None, *, doc_id: str | None = None, corpus: str = "brat",
                       split: str = "", label_key: str | None = None, lang: str = "en",
                       only_mapped: bool = False, report: ReadReport | None = None) -> Document:
    """One BRAT document: ``<id>.txt`` and ``<id>.ann``, read by the lenient mode of
    :mod:`biotag.runtime.formats.brat` (its module doc: line kinds, continuation lines, repairs).
    Only ``T`` lines become entities; ``only_mapped`` leaves out the types without a canonical
    type (counted as ``type_left_out``)."""
    from .formats.brat import resolve_mention, scan_ann

    txt_path = Path(txt_path)
    ann_path = Path(ann_path) if ann_path is not None else txt_path.with_suffix(".ann")
    report = _report(report)
    label_key = label_key or corpus
    keep = mapped_types(label_key) if only_mapped else None
    text = read_text(txt_path, allow_empty=True)     # no newline translation: CRLF is 2 characters
    ents: list[Entity] = []
    if ann_path.exists():
        ann = read_text(ann_path, allow_empty=True)
    else:
        report.count("missing_ann")
        ann = ""
    scanned = scan_ann(ann, ann_path, strict=False)
    if scanned.other_lines:
        report.count("brat_other_lines", scanned.other_lines)
    if scanned.stray_lines:
        report.count("brat_continuation_lines", scanned.stray_lines)
    if scanned.duplicate_ids:
        report.count("brat_duplicate_ids", scanned.duplicate_ids)
    for m in scanned.mentions:
        report.mention(m.type)
        if m.discontinuous:
            report.count("discontinuous")
        resolve_mention(text, m, doc_id or txt_path.stem, ann_path, strict=False)
        if m.mismatch:
            report.count("text_mismatch")
        if keep is not None and m.type not in keep:
            report.count("type_left_out")
            continue
        where = _where(ann_path, m.line)
        if m.problem:
            report.drop(m.problem, where, m.detail)
            continue
        if m.continued:
            report.count("quote_continued")
        if m.repair:
            report.repair(_BRAT_REPAIR_KIND[m.repair], where, m.detail)
        frags = m.fragments
        disc = {"discontinuous": True, "fragments": [list(f) for f in frags]} if m.discontinuous else {}
        ents.append(_entity(text, m.start, m.end, m.type, label_key, **disc, brat_id=m.id,
                            repair=m.repair,
                            mention=m.quote if m.repair and m.repair != "trimmed" else None))
    ents.sort(key=_sort_key)
    segs, pos = [], 0
    for ln in text.split("\n"):
        if ln.strip():
            segs.append(Segment(pos, pos + len(ln.rstrip("\r"))))
        pos += len(ln) + 1
    doc = Document(doc_id or f"{corpus}/{split}/{txt_path.stem}", text, ents, lang,
                   {"corpus": corpus, "split": split, "file": txt_path.name})
    doc.segments = segs
    return doc


def read_brat(directory, *, corpus: str = "brat", split: str = "", label_key: str | None = None,
              lang: str = "en", only_mapped: bool = False,
              report: ReadReport | None = None) -> Iterator[Document]:
    """All ``*.txt`` (+ ``.ann``) documents of a folder, in file-name order."""
    d = Path(directory)
    if not d.is_dir():
        raise InputError(f"{d}: not a folder of BRAT .txt/.ann files")
    files = sorted(d.glob("*.txt"))
    if not files:
        raise InputError(f"{d}: no .txt files (BRAT standoff expects <id>.txt + <id>.ann)")
    report = _report(report)
    for f in files:
        yield read_brat_document(f, corpus=corpus, split=split, label_key=label_key, lang=lang,
                                 only_mapped=only_mapped, report=report)


# ---------------------------------------------------------------------------------------------
# JSON formats
# ---------------------------------------------------------------------------------------------
def _iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    text = read_text(path)
    for no, line in enumerate(_lines(path, text), 1):
        if not line.strip():
            continue
        try:
            yield no, json.loads(line)
        except json.JSONDecodeError as exc:
            raise FormatError(f"invalid JSON ({exc.msg}, column {exc.colno})", path, no) from None


_JSON_WS = re.compile(r"[ \t\n\r]*")


def _iter_json_records(path: Path) -> Iterator[tuple[int, Any]]:
    """Items of a JSON array with the line each starts on; JSON lines are accepted as well."""
    text = read_text(path)
    i = _JSON_WS.match(text).end()
    if text[i:i + 1] != "[":
        yield from _iter_jsonl(path)
        return
    dec = json.JSONDecoder()
    line, last = 1 + text.count("\n", 0, i), i
    i += 1
    expect_item = True
    while True:
        i = _JSON_WS.match(text, i).end()
        if i >= len(text):
            raise FormatError("unterminated JSON array", path, text.count("\n") + 1)
        if text[i] == "]":
            rest = _JSON_WS.match(text, i + 1).end()
            if rest != len(text):
                raise FormatError("text after the JSON array", path, 1 + text.count("\n", 0, rest))
            return
        if not expect_item:
            raise FormatError("expected ',' or ']' in the JSON array", path, 1 + text.count("\n", 0, i))
        line += text.count("\n", last, i)
        last = i
        try:
            obj, end = dec.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            raise FormatError(f"invalid JSON ({exc.msg}, column {exc.colno})", path, exc.lineno) from None
        yield line, obj
        i = _JSON_WS.match(text, end).end()
        if text[i:i + 1] == ",":
            i += 1
            expect_item = True
        else:
            expect_item = False


def _as_int(v, what: str, path, line) -> int:
    if isinstance(v, bool):
        raise FormatError(f"{what} must be an integer, found {v!r}", path, line)
    if isinstance(v, int):
        return v
    if isinstance(v, str) and re.fullmatch(r"\s*-?\d+\s*", v):
        return int(v)
    raise FormatError(f"{what} must be an integer, found {_short(repr(v))}", path, line)


def read_genia_jsonl(path, *, corpus: str = "genia", split: str = "", label_key: str | None = None,
                     lang: str = "en", report: ReadReport | None = None) -> Iterator[Document]:
    """GENIA JSON lines: tokens + nested token spans (end exclusive). Tokens may contain spaces."""
    path = Path(path)
    report = _report(report)
    label_key = label_key or corpus
    for index, (no, rec) in enumerate(_iter_jsonl(path)):
        if not isinstance(rec, dict) or not isinstance(rec.get("tokens"), list):
            raise FormatError("expected an object with a 'tokens' list", path, no)
        tokens = rec["tokens"]
        for t in tokens:
            if not isinstance(t, str) or t == "":
                raise FormatError(f"tokens must be non-empty strings, found {t!r}", path, no)
        mentions = rec.get("entity_mentions") or []
        if not isinstance(mentions, list):
            raise FormatError("'entity_mentions' must be a list", path, no)
        text = " ".join(tokens)
        starts, pos = [], 0
        for t in tokens:
            starts.append(pos)
            pos += len(t) + 1
        report.count("tokens", len(tokens))
        report.count("tokens_containing_space", sum(1 for t in tokens if " " in t))
        ents = []
        for m in mentions:
            if not isinstance(m, dict) or "entity_type" not in m:
                raise FormatError("each entity mention needs 'start', 'end', 'entity_type'", path, no)
            s = _as_int(m.get("start"), "'start'", path, no)
            e = _as_int(m.get("end"), "'end'", path, no)
            typ = str(m["entity_type"])
            report.mention(typ)
            if not 0 <= s < e <= len(tokens):
                report.drop("token_span_out_of_range", _where(path, no), f"[{s}, {e}) {typ}")
                continue
            cs, ce = starts[s], starts[e - 1] + len(tokens[e - 1])
            if "text" in m and m["text"] != text[cs:ce]:
                report.count("text_mismatch")  # token indices are authoritative
            ents.append(_entity(text, cs, ce, typ, label_key))
        ents.sort(key=_sort_key)
        meta = {"corpus": corpus, "split": split, "line": no}
        for k in ("doc_id", "sent_id"):
            if k in rec:
                meta[k] = rec[k]
        yield Document(f"{corpus}/{split}/{index}", text, ents, lang, meta)


def read_cmeee_json(path, *, corpus: str = "cmeee", split: str = "", label_key: str | None = None,
                    lang: str = "zh", report: ReadReport | None = None) -> Iterator[Document]:
    """CMeEE JSON array of ``{"text", "entities": [{"start_idx", "end_idx", "type", "entity"}]}``
    with ``end_idx`` inclusive. Characters such as U+FEFF are kept (they count in offsets)."""
    path = Path(path)
    report = _report(report)
    label_key = label_key or corpus
    for index, (no, rec) in enumerate(_iter_json_records(path)):
        if not isinstance(rec, dict) or not isinstance(rec.get("text"), str):
            raise FormatError("expected an object with a 'text' string", path, no)
        text = rec["text"]
        raw = rec.get("entities") or []
        if not isinstance(raw, list):
            raise FormatError("'entities' must be a list", path, no)
        ents = []
        where = _where(path, no)
        for m in raw:
            if not isinstance(m, dict) or "type" not in m:
                raise FormatError("each entity needs 'start_idx', 'end_idx', 'type'", path, no)
            s = _as_int(m.get("start_idx"), "'start_idx'", path, no)
            e = _as_int(m.get("end_idx"), "'end_idx'", path, no) + 1
            typ = str(m["type"])
            report.mention(typ)
            mention = m.get("entity")
            repair = None
            if isinstance(mention, str):
                if text[s:e] != mention or s < 0:
                    res = _resolve_span(text, s, mention, report, where)
                    if res is None:
                        continue
                    s, e, repair = res
            elif not 0 <= s < e <= len(text):
                report.drop("offset_out_of_range", where, f"[{s}, {e}) {typ}")
                continue
            ents.append(_entity(text, s, e, typ, label_key, repair=repair,
                                mention=mention if repair else None))
        ents.sort(key=_sort_key)
        yield Document(f"{corpus}/{split}/{index}", text, ents, lang,
                       {"corpus": corpus, "split": split, "line": no})


def read_chineseblue_jsonl(path, *, corpus: str = "chineseblue", split: str = "",
                           label_key: str | None = None, lang: str = "zh",
                           report: ReadReport | None = None) -> Iterator[Document]:
    """ChineseBLUE JSON lines ``{"text", "mention_data": [{"mention", "type"|"label", "offset"}]}``;
    ``offset`` (str or int) is the start, end = offset + len(mention). Mismatching offsets are
    repaired or dropped (module doc)."""
    path = Path(path)
    report = _report(report)
    label_key = label_key or corpus
    for index, (no, rec) in enumerate(_iter_jsonl(path)):
        if not isinstance(rec, dict) or not isinstance(rec.get("text"), str):
            raise FormatError("expected an object with a 'text' string", path, no)
        text = rec["text"]
        raw = rec.get("mention_data") or []
        if not isinstance(raw, list):
            raise FormatError("'mention_data' must be a list", path, no)
        ents = []
        where = _where(path, no)
        for m in raw:
            if not isinstance(m, dict) or not isinstance(m.get("mention"), str) or "offset" not in m:
                raise FormatError("each mention needs 'mention', 'offset' and 'type' or 'label'",
                                  path, no)
            typ = m.get("type", m.get("label"))
            if not isinstance(typ, str) or not typ:
                raise FormatError("mention without 'type' / 'label'", path, no)
            if isinstance(m["offset"], int) and not isinstance(m["offset"], bool):
                report.count("integer_offsets")
            start = _as_int(m["offset"], "'offset'", path, no)
            report.mention(typ)
            res = _resolve_span(text, start, m["mention"], report, where)
            if res is None:
                continue
            s, e, repair = res
            ents.append(_entity(text, s, e, typ, label_key, repair=repair,
                                mention=m["mention"] if repair else None, guid=m.get("guid")))
        ents.sort(key=_sort_key)
        yield Document(f"{corpus}/{split}/{index}", text, ents, lang,
                       {"corpus": corpus, "split": split, "line": no})


# ---------------------------------------------------------------------------------------------
# PubTator
# ---------------------------------------------------------------------------------------------
_PT_TEXT = re.compile(r"([^|\t]+)\|([ta])\|(.*)", re.S)


def read_pubtator(path, *, corpus: str = "pubtator", split: str = "", label_key: str | None = None,
                  lang: str = "en", report: ReadReport | None = None) -> Iterator[Document]:
    """PubTator: ``PMID|t|title``, ``PMID|a|abstract``, mention lines
    ``PMID<TAB>start<TAB>end<TAB>mention<TAB>type[<TAB>id[<TAB>parts]]``; relation lines (4 fields)
    are skipped. Text = title + " " + abstract; one Document per abstract."""
    path = Path(path)
    report = _report(report)
    label_key = label_key or corpus
    seen: Counter = Counter()
    cur: dict | None = None

    def flush(c):
        title, abstract = c["title"], c["abstract"]
        text = title if abstract is None else title + " " + abstract
        ents = []
        for no, s, e, mention, typ, ids in c["mentions"]:
            report.mention(typ)
            where = _where(path, no)
            repair = None
            if not (0 <= s < e <= len(text)) or text[s:e] != mention:
                res = _resolve_span(text, s, mention, report, where)
                if res is None:
                    continue
                s, e, repair = res
            ents.append(_entity(text, s, e, typ, label_key, id=ids, repair=repair,
                                mention=mention if repair else None))
        ents.sort(key=_sort_key)
        pmid = c["pmid"]
        seen[pmid] += 1
        did = pmid if seen[pmid] == 1 else f"{pmid}-{seen[pmid]}"
        doc = Document(f"{corpus}/{split}/{did}", text, ents, lang,
                       {"corpus": corpus, "split": split, "pmid": pmid, "line": c["line"]})
        segs = [Segment(0, len(title))] if title else []
        if abstract:
            segs.append(Segment(len(title) + 1, len(text)))
        doc.segments = segs
        return doc

    for no, line in enumerate(_lines(path), 1):
        if not line.strip():
            if cur is not None:
                yield flush(cur)
                cur = None
            continue
        m = _PT_TEXT.fullmatch(line)
        if m and "\t" not in m.group(1):
            pmid, kind, body = m.group(1), m.group(2), m.group(3)
            if kind == "t":
                if cur is not None:
                    yield flush(cur)
                cur = {"pmid": pmid, "title": body, "abstract": None, "mentions": [], "line": no}
            else:
                if cur is None:
                    cur = {"pmid": pmid, "title": "", "abstract": None, "mentions": [], "line": no}
                if cur["pmid"] != pmid:
                    raise FormatError(f"abstract of PMID {pmid} inside document {cur['pmid']}", path, no)
                if cur["abstract"] is not None or cur["mentions"]:
                    raise FormatError(f"second or misplaced abstract line for PMID {pmid}", path, no)
                cur["abstract"] = body
            continue
        fields = line.split("\t")
        if cur is None:
            raise FormatError("annotation line before a 'PMID|t|title' line", path, no)
        if fields[0] != cur["pmid"]:
            raise FormatError(f"line of PMID {fields[0]!r} inside document {cur['pmid']}", path, no)
        if len(fields) == 4 and not re.fullmatch(r"\d+", fields[1]):
            report.count("relations")
            continue
        if len(fields) not in (5, 6, 7):
            raise FormatError(f"expected a mention line with 6 or 7 tab-separated fields, "
                              f"found {len(fields)}", path, no)
        s = _as_int(fields[1], "start", path, no)
        e = _as_int(fields[2], "end", path, no)
        if not fields[4]:
            raise FormatError("mention line without a type", path, no)
        ids = fields[5] if len(fields) > 5 else None
        cur["mentions"].append((no, s, e, fields[3], fields[4], ids))
        if len(fields) == 7:
            report.count("composite_mentions")
    if cur is not None:
        yield flush(cur)


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------
FORMATS: dict[str, Callable[..., Iterator[Document]]] = {
    "iob-tsv": read_iob_tsv,
    "conll": read_conll,
    "char-bio": read_char_bio,
    "brat": read_brat,
    "genia-jsonl": read_genia_jsonl,
    "cmeee-json": read_cmeee_json,
    "chineseblue-jsonl": read_chineseblue_jsonl,
    "pubtator": read_pubtator,
}


@dataclass(frozen=True, eq=False)
class CorpusSpec:
    """One corpus: where its files are, how to read them and how the README counts it."""

    name: str
    folder: str                   # relative to the data folder
    format: str                   # key of FORMATS
    splits: dict[str, str]        # split -> file or folder, relative to ``folder``
    lang: str
    labels: str                   # key of labels.LABEL_MAP / EXTRA_LABEL_MAP
    unit: str = "sentences"       # what one Document is: sentences | documents | records
    nested: bool = False
    options: dict = field(default_factory=dict)   # extra reader keyword arguments
    extra: bool = False

    def path(self, split: str, data_dir=None) -> Path:
        if split not in self.splits:
            raise InputError(f"corpus {self.name!r} has no split {split!r} "
                             f"(splits: {', '.join(self.splits)})")
        return resolve_data_dir(data_dir) / self.folder / self.splits[split]

    def read(self, split: str, data_dir=None, report: ReadReport | None = None) -> Iterator[Document]:
        p = self.path(split, data_dir)
        if not p.exists():
            raise InputError(f"corpus {self.name!r} split {split!r}: {p} is missing "
                             f"(pass --data-dir or set BIOTAG_DATA_DIR)")
        if report is not None:
            report.corpus, report.split = report.corpus or self.name, report.split or split
        return FORMATS[self.format](p, corpus=self.name, split=split, label_key=self.labels,
                                    lang=self.lang, report=report, **self.options)

    def to_json(self) -> dict:
        return {"name": self.name, "folder": self.folder, "format": self.format,
                "splits": dict(self.splits), "lang": self.lang, "labels": self.labels,
                "unit": self.unit, "nested": self.nested, "extra": self.extra}


_TSV = {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}
CLINICAL = ("maccrobat2020", "chia")
_EXTRA = ["anatem", "bionlp09", "bionlp11epi", "bionlp11id", "bionlp13cg", "bionlp13ge",
          "bionlp13pc", "ex-ptm"]

CORPORA: dict[str, CorpusSpec] = {s.name: s for s in [
    CorpusSpec("ncbi-disease", "ncbi-disease", "iob-tsv", dict(_TSV), "en", "ncbi-disease"),
    CorpusSpec("bc5cdr", "bc5cdr", "iob-tsv", dict(_TSV), "en", "bc5cdr"),
    CorpusSpec("bc5cdr-pubtator", "bc5cdr/pubtator", "pubtator",
               {"train": "train.PubTator.txt", "dev": "dev.PubTator.txt",
                "test": "test.PubTator.txt"}, "en", "bc5cdr", unit="documents"),
    CorpusSpec("bc2gm", "bc2gm", "iob-tsv", dict(_TSV), "en", "bc2gm"),
    CorpusSpec("jnlpba", "jnlpba", "brat", {"train": "train", "dev": "dev", "test": "test"},
               "en", "jnlpba", unit="documents"),
    CorpusSpec("linnaeus", "linnaeus", "iob-tsv", dict(_TSV), "en", "linnaeus"),
    CorpusSpec("s800", "s800", "iob-tsv", dict(_TSV), "en", "s800",
               options={"bare_type": "Species"}),
    CorpusSpec("genia", "genia", "genia-jsonl",
               {"train": "train.jsonl", "dev": "dev.jsonl", "test": "test.jsonl"}, "en", "genia",
               nested=True),
    CorpusSpec("cmeee", "cmeee", "cmeee-json", {"train": "train_nested.json", "test": "test.json"},
               "zh", "cmeee", unit="records", nested=True),
    CorpusSpec("cmeee-flat", "cmeee", "char-bio", {"train": "train_flat.bio"}, "zh", "cmeee",
               nested=True),
    CorpusSpec("cmedqaner", "cmedqaner", "chineseblue-jsonl",
               {"train": "train.jsonl", "dev": "dev.jsonl", "test": "test.jsonl"}, "zh",
               "cmedqaner", unit="records", nested=True),
    CorpusSpec("cehrner", "cehrner", "chineseblue-jsonl",
               {"train": "train.jsonl", "dev": "dev.jsonl", "test": "test.jsonl"}, "zh", "cehrner",
               unit="records"),
    CorpusSpec("conll2003", "conll2003", "conll",
               {"train": "train.conll", "dev": "dev.conll", "test": "test.conll"}, "en",
               "conll2003"),
] + [CorpusSpec(n, f"extra/{n}", "iob-tsv", dict(_TSV), "en", n, extra=True) for n in _EXTRA] + [
    # English clinical corpora (brat); only the types of LABEL_MAP are read (docs/clinical_types.md)
    CorpusSpec(n, f"extra/{n}", "brat", {"train": "train", "dev": "dev", "test": "test"}, "en", n,
               unit="documents", nested=True, options={"only_mapped": True}, extra=True)
    for n in CLINICAL]}


def default_data_dir() -> Path:
    """BIOTAG_DATA_DIR, else ``<repo>/../shared/data`` (a source checkout)."""
    env = os.environ.get("BIOTAG_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def resolve_data_dir(data_dir=None) -> Path:
    p = Path(data_dir) if data_dir is not None else default_data_dir()
    if not p.is_dir():
        raise InputError(f"data folder {p} does not exist (pass --data-dir or set BIOTAG_DATA_DIR)")
    return p


def get_corpus(name: str) -> CorpusSpec:
    key = name[len("extra/"):] if name.startswith("extra/") else name
    if key not in CORPORA:
        raise InputError(f"unknown corpus {name!r} (known: {', '.join(CORPORA)})")
    return CORPORA[key]


def iter_corpora(data_dir=None, names: Iterable[str] | None = None,
                 include_extra: bool = True) -> Iterator[CorpusSpec]:
    """Registered corpora (or those named). With ``data_dir``, IOB TSV folders under ``extra/``
    that the registry does not know are added as well (types passed through)."""
    if names:
        for n in names:
            yield get_corpus(n)
        return
    for spec in CORPORA.values():
        if include_extra or not spec.extra:
            yield spec
    if data_dir is not None and include_extra:
        extra = Path(data_dir) / "extra"
        if extra.is_dir():
            for d in sorted(extra.iterdir()):
                if d.is_dir() and d.name not in CORPORA:
                    splits = {f.stem: f.name for f in sorted(d.glob("*.tsv"))}
                    if splits:
                        yield CorpusSpec(d.name, f"extra/{d.name}", "iob-tsv", splits, "en",
                                         d.name, extra=True)


def iter_documents(name: str, split: str, data_dir=None,
                   report: ReadReport | None = None) -> Iterator[Document]:
    return get_corpus(name).read(split, data_dir, report)


def load(name: str, split: str, data_dir=None, report: ReadReport | None = None) -> list[Document]:
    """All Documents of one corpus split (see CORPORA for names and splits)."""
    return list(iter_documents(name, split, data_dir, report))


def read_file(path, format: str, *, corpus: str = "corpus", split: str = "",
              label_key: str | None = None, lang: str | None = None,
              report: ReadReport | None = None, **options) -> Iterator[Document]:
    """Read any file or folder in one of FORMATS."""
    if format not in FORMATS:
        raise InputError(f"unknown corpus format {format!r} (known: {', '.join(FORMATS)})")
    if lang is None:
        lang = "zh" if format in ("char-bio", "cmeee-json", "chineseblue-jsonl") else "en"
    return FORMATS[format](path, corpus=corpus, split=split, label_key=label_key, lang=lang,
                           report=report, **options)


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------
def doc_stats(docs: Iterable[Document], report: ReadReport | None = None,
              unit: str = "units") -> dict:
    """Units, mentions (README rule, from the report), kept mentions, nested / crossing /
    same-span pairs, repairs and drops of a list of Documents."""
    units = kept = nested = crossing = same = 0
    doc_ids: set = set()
    kept_types: Counter = Counter()
    for d in docs:
        units += 1
        kept += len(d.entities)
        if "doc_id" in d.meta:
            doc_ids.add(d.meta["doc_id"])
        for e in d.entities:
            kept_types[e.type] += 1
        if len(d.entities) > 1:
            nested += len(d.nested_pairs())
            crossing += len(d.crossing_pairs())
            spans = Counter(e.span for e in d.entities)
            same += sum(n * (n - 1) // 2 for n in spans.values() if n > 1)
    rep = report or ReadReport()
    out = {"corpus": rep.corpus, "split": rep.split, "unit": unit, "units": units,
           "mentions": rep.mentions if report is not None else kept, "mentions_kept": kept,
           "types": dict(rep.types.most_common()), "types_canonical": dict(kept_types.most_common()),
           "nested_pairs": nested, "crossing_pairs": crossing, "same_span_pairs": same,
           "repaired": rep.repaired, "dropped": rep.dropped,
           "counters": dict(sorted(rep.counters.items())), "examples": list(rep.examples)}
    if doc_ids:
        out["documents"] = len(doc_ids)
    return out


def corpus_stats(name: str, split: str, data_dir=None) -> dict:
    spec = get_corpus(name)
    rep = ReadReport(spec.name, split)
    return doc_stats(spec.read(split, data_dir, rep), rep, spec.unit)


# ---------------------------------------------------------------------------------------------
# Word boundaries
# ---------------------------------------------------------------------------------------------
def _char_class(c: str) -> str:
    if not c:
        return "edge"
    if c.isspace():
        return "space"
    cat = unicodedata.category(c)
    if cat[0] == "L":
        return "CJK" if "\u2e80" <= c <= "\U0003134f" and cat == "Lo" else "letter"
    if cat[0] == "N":
        return "digit"
    if cat[0] == "M":
        return "mark"
    return "punct"


def _boundary_cause(text: str, pos: int, side: str) -> str:
    inside = text[pos] if side == "start" else text[pos - 1]
    if inside.isspace():
        return f"{side} on whitespace"
    left = text[pos - 1] if pos > 0 else ""
    right = text[pos] if pos < len(text) else ""
    return f"{side} inside word ({_char_class(left)}|{_char_class(right)})"


def word_boundary_report(docs: Iterable[Document], max_examples: int = 5) -> dict:
    """Share of gold entities whose start is a word start and end a word end of
    ``segment_words(doc.text)``; misaligned boundaries counted by cause, with examples."""
    total = aligned = start_ok = end_ok = 0
    causes: Counter = Counter()
    examples: dict[str, list[str]] = {}
    for d in docs:
        if not d.entities:
            continue
        words = segment_words(d.text)
        wstarts = {w.start for w in words}
        wends = {w.end for w in words}
        for e in d.entities:
            total += 1
            so, eo = e.start in wstarts, e.end in wends
            start_ok += so
            end_ok += eo
            if so and eo:
                aligned += 1
                continue
            found = []
            if not so:
                found.append(_boundary_cause(d.text, e.start, "start"))
            if not eo:
                found.append(_boundary_cause(d.text, e.end, "end"))
            for c in found:
                causes[c] += 1
                ex = examples.setdefault(c, [])
                if len(ex) < max_examples:
                    a, b = max(0, e.start - 15), min(len(d.text), e.end + 15)
                    ex.append(f"{d.id}: {d.text[a:e.start]}[{e.text}]{d.text[e.end:b]} ({e.type})"
                              .replace("\n", " "))
    return {"entities": total, "aligned": aligned,
            "share": round(aligned / total, 6) if total else 1.0,
            "start_aligned": start_ok, "end_aligned": end_ok,
            "causes": dict(causes.most_common()),
            "examples": {c: examples[c] for c, _ in causes.most_common()}}


# ---------------------------------------------------------------------------------------------
# CLI: biotag data ...
# ---------------------------------------------------------------------------------------------
def _selected(args) -> list[tuple[CorpusSpec, list[str]]]:
    data_dir = resolve_data_dir(args.data_dir)
    specs = list(iter_corpora(data_dir, args.corpus or None))
    out = []
    for spec in specs:
        splits = [s for s in spec.splits if not args.split or s in args.split]
        if args.split and not splits:
            continue
        out.append((spec, splits))
    return out


def _cmd_list(args) -> int:
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    specs = list(iter_corpora(data_dir if data_dir.is_dir() else None))
    if args.json:
        print(json.dumps([s.to_json() for s in specs], ensure_ascii=False, indent=1))
        return 0
    for s in specs:
        print(f"{s.name:16} {s.lang}  {s.format:18} {s.folder:18} {', '.join(s.splits)}")
    return 0


def _cmd_stats(args) -> int:
    data_dir = resolve_data_dir(args.data_dir)
    results = []
    for spec, splits in _selected(args):
        for split in splits:
            st = corpus_stats(spec.name, split, data_dir)
            if not args.examples:
                st.pop("examples", None)
            results.append(st)
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=1))
        return 0
    head = f"{'corpus':16} {'split':6} {'units':>8} {'unit':10} {'mentions':>8} {'kept':>8} " \
           f"{'nested':>7} {'cross':>5} {'repair':>6} {'drop':>5}  types"
    print(head)
    for st in results:
        types = ", ".join(f"{k} {v}" for k, v in st["types"].items())
        print(f"{st['corpus']:16} {st['split']:6} {st['units']:>8} {st['unit']:10} "
              f"{st['mentions']:>8} {st['mentions_kept']:>8} {st['nested_pairs']:>7} "
              f"{st['crossing_pairs']:>5} {st['repaired']:>6} {st['dropped']:>5}  {types}")
        if args.examples:
            for ex in st.get("examples", []):
                print(f"    {ex}")
    return 0


def _cmd_words(args) -> int:
    data_dir = resolve_data_dir(args.data_dir)
    results = []
    for spec, splits in _selected(args):
        for split in splits:
            rep = word_boundary_report(spec.read(split, data_dir), max_examples=args.examples)
            rep = {"corpus": spec.name, "split": split, **rep}
            results.append(rep)
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=1))
        return 0
    print(f"{'corpus':16} {'split':6} {'entities':>8} {'aligned':>8} {'share':>8}  main causes")
    for r in results:
        causes = "; ".join(f"{c} {n}" for c, n in list(r["causes"].items())[:3])
        print(f"{r['corpus']:16} {r['split']:6} {r['entities']:>8} {r['aligned']:>8} "
              f"{100 * r['share']:>7.2f}%  {causes}")
    if args.examples:
        for r in results:
            for c, exs in r["examples"].items():
                for ex in exs:
                    print(f"  {r['corpus']}/{r['split']} {c}: {ex}")
    return 0


def codec_round_trip_report(docs) -> dict:
    """Encode every document with both tag formats and decode it back. A document round-trips when
    decoding gives back exactly its word-aligned entities. Entities that cross another one cannot be
    written in a bracket format (P: same type only; S: any type) and are counted apart."""
    from .codec import FORMAT_P, FORMAT_S, Span, decode, encodable, encode
    from .words import char_span_to_words, segment_words

    out = {"documents": 0, "entities_aligned": 0, "entities_off_word": 0}
    for fmt in (FORMAT_P, FORMAT_S):
        out[fmt] = {"documents_ok": 0, "entities_recovered": 0, "crossing_dropped": 0}
    for doc in docs:
        out["documents"] += 1
        words = segment_words(doc.text)
        spans = set()
        for e in doc.entities:
            ws = char_span_to_words(words, e.start, e.end)
            if ws is None:
                out["entities_off_word"] += 1
            else:
                spans.add(Span(ws[0], ws[1], e.type))
        out["entities_aligned"] += len(spans)
        wtext = [w.text for w in words]
        for fmt in (FORMAT_P, FORMAT_S):
            kept, dropped = encodable(spans, fmt)
            got, _ = decode(wtext, encode(wtext, spans, fmt), fmt)
            ok = set(got) == spans
            r = out[fmt]
            r["documents_ok"] += ok
            r["entities_recovered"] += len(set(got) & spans)
            r["crossing_dropped"] += len(dropped)
    for fmt in (FORMAT_P, FORMAT_S):
        r = out[fmt]
        r["document_share"] = r["documents_ok"] / out["documents"] if out["documents"] else 1.0
        r["entity_share"] = (r["entities_recovered"] / out["entities_aligned"]
                             if out["entities_aligned"] else 1.0)
    return out


def _cmd_codec(args) -> int:
    data_dir = resolve_data_dir(args.data_dir)
    results = []
    for spec, splits in _selected(args):
        for split in splits:
            rep = codec_round_trip_report(spec.read(split, data_dir))
            results.append({"corpus": spec.name, "split": split, **rep})
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=1))
        return 0
    print(f"{'corpus':16} {'split':6} {'docs':>6} {'aligned':>8}  {'P docs':>8} {'P ents':>8} "
          f"{'S docs':>8} {'S ents':>8}  crossing P/S")
    for r in results:
        print(f"{r['corpus']:16} {r['split']:6} {r['documents']:>6} {r['entities_aligned']:>8}  "
              f"{100 * r['P']['document_share']:>7.2f}% {100 * r['P']['entity_share']:>7.2f}% "
              f"{100 * r['S']['document_share']:>7.2f}% {100 * r['S']['entity_share']:>7.2f}%  "
              f"{r['P']['crossing_dropped']}/{r['S']['crossing_dropped']}")
    return 0


def _cmd_dump(args) -> int:
    spec = get_corpus(args.corpus_name)
    rep = ReadReport(spec.name, args.split_name)
    out = open(args.output, "w", encoding="utf-8", newline="\n") if args.output else sys.stdout
    try:
        for d in spec.read(args.split_name, args.data_dir, rep):
            out.write(d.to_jsonl_line() + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"{spec.name}/{args.split_name}: {rep.mentions} mentions, {rep.repaired} repaired, "
          f"{rep.dropped} dropped", file=sys.stderr)
    return 0


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("data", help="read the training corpora: list, stats, words, dump",
                              description="Read the NER corpora in their original formats.")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION")

    def common(sp, select=True):
        sp.add_argument("--data-dir", default=None,
                        help="the corpora folder (default: $BIOTAG_DATA_DIR or ../shared/data)")
        sp.add_argument("--json", action="store_true", help="print JSON")
        if select:
            sp.add_argument("--corpus", nargs="+", action="extend", metavar="NAME",
                            help="only these corpora (default: all)")
            sp.add_argument("--split", nargs="+", action="extend", metavar="SPLIT",
                            help="only these splits")

    sp = sub.add_parser("list", help="the registered corpora")
    common(sp, select=False)
    sp.set_defaults(func=_cmd_list)
    sp = sub.add_parser("stats", help="units, mentions, types, nested/crossing pairs, repairs")
    common(sp)
    sp.add_argument("--examples", action="store_true", help="show repair/drop examples")
    sp.set_defaults(func=_cmd_stats)
    sp = sub.add_parser("words", help="share of entity boundaries on word boundaries")
    common(sp)
    sp.add_argument("--examples", type=int, default=3, metavar="N",
                    help="examples per cause (default 3; 0: none)")
    sp.set_defaults(func=_cmd_words)
    sp = sub.add_parser("codec", help="share of documents/entities that round-trip the tag codec")
    common(sp)
    sp.set_defaults(func=_cmd_codec)
    sp = sub.add_parser("dump", help="write one corpus split as canonical JSONL")
    sp.add_argument("corpus_name", metavar="CORPUS")
    sp.add_argument("split_name", metavar="SPLIT")
    sp.add_argument("--data-dir", default=None)
    sp.add_argument("-o", "--output", default=None, help="output file (default: stdout)")
    sp.set_defaults(func=_cmd_dump)

    def _help(_args) -> int:
        p.print_help()
        return 2
    p.set_defaults(func=_help)
