"""Standoff readers: BRAT and PubTator, through the one parser of each format
(runtime.formats.brat, runtime.formats.pubtator) in its lenient mode; what stays here is corpus
policy: repairs and their counting, types, ids, segments."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterator

from ..document import Document, Entity, Segment
from ..errors import InputError
from ..labels import LABEL_MAP
from ..textio import read_text
from .repairs import EXTRA_LABEL_MAP, ReadReport, _entity, _report, _resolve_span, _sort_key, _where


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
    from ..formats.brat import resolve_mention, scan_ann

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
# PubTator
# ---------------------------------------------------------------------------------------------
def read_pubtator(path, *, corpus: str = "pubtator", split: str = "", label_key: str | None = None,
                  lang: str = "en", report: ReadReport | None = None) -> Iterator[Document]:
    """PubTator, read by the lenient mode of :func:`biotag.runtime.formats.pubtator.scan` (its
    doc: line kinds). Text = title + " " + abstract; one Document per abstract, a repeated PMID
    gets the id ``PMID-2``, ``PMID-3`` ... Mentions whose offsets do not match their text are
    repaired or dropped (counted); relation lines and composite mentions (7 fields) are counted."""
    from ..formats.pubtator import scan

    path = Path(path)
    report = _report(report)
    label_key = label_key or corpus
    seen: Counter = Counter()
    for raw in scan(read_text(path), path, strict=False):
        if raw.relations:
            report.count("relations", len(raw.relations))
        composite = sum(len(m.fields) == 7 for m in raw.mentions)
        if composite:
            report.count("composite_mentions", composite)
        title, abstract = raw.title, raw.abstract
        text = title if abstract is None else title + " " + abstract
        ents = []
        for m in raw.mentions:
            s, e, mention, typ = m.start, m.end, m.fields[3], m.fields[4]
            report.mention(typ)
            where = _where(path, m.line)
            repair = None
            if not (0 <= s < e <= len(text)) or text[s:e] != mention:
                res = _resolve_span(text, s, mention, report, where)
                if res is None:
                    continue
                s, e, repair = res
            ents.append(_entity(text, s, e, typ, label_key,
                                id=m.fields[5] if len(m.fields) > 5 else None, repair=repair,
                                mention=mention if repair else None))
        ents.sort(key=_sort_key)
        seen[raw.id] += 1
        did = raw.id if seen[raw.id] == 1 else f"{raw.id}-{seen[raw.id]}"
        doc = Document(f"{corpus}/{split}/{did}", text, ents, lang,
                       {"corpus": corpus, "split": split, "pmid": raw.id, "line": raw.line})
        segs = [Segment(0, len(title))] if title else []
        if abstract:
            segs.append(Segment(len(title) + 1, len(text)))
        doc.segments = segs
        yield doc
