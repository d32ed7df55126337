"""Statistics and checks of read corpora: counts, word boundaries, codec round trips."""
from __future__ import annotations

import unicodedata
from collections import Counter
from typing import Iterable

from ..document import Document
from ..words import segment_words
from .repairs import ReadReport
from .registry import get_corpus


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


def codec_round_trip_report(docs) -> dict:
    """Encode every document with both tag formats and decode it back. A document round-trips when
    decoding gives back exactly its word-aligned entities. Entities that cross another one cannot be
    written in a bracket format (P: same type only; S: any type) and are counted apart."""
    from ..codec import FORMAT_P, FORMAT_S, Span, decode, encodable, encode
    from ..words import char_span_to_words, segment_words

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
