"""Split clinical and scientific text into segments with exact offsets.

Lines first (notes are line-oriented: headings such as "HPI:", bulleted and numbered lists), then
sentences inside each line with pysbd (handles "Dr.", "e.g.", "b.i.d.", "2.5 mg"), Chinese
sentence punctuation included; English cuts that pysbd makes inside a species abbreviation or a
spaced number of tokenized text ("C . albicans", "sp . nov .", "PU . 1") are joined again. Segments never include surrounding whitespace. Segments longer than
``max_words`` are cut into overlapping word windows by ``windows``.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from .words import Word, has_cjk, is_cjk, segment_words

# --- sentences of annotated corpus documents (training and corpus evaluation) ---------------

_LINE_RE = re.compile(r"[^\r\n]+")


class Seg(NamedTuple):
    start: int
    end: int
    lang: str


def detect_lang(text: str) -> str:
    """'zh' when at least a fifth of the letters are CJK characters, else 'en'."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return "zh" if has_cjk(text) else "en"
    cjk = sum(1 for c in letters if is_cjk(c))
    return "zh" if cjk * 5 >= len(letters) else "en"


@lru_cache(maxsize=4)
def _pysbd(lang: str):
    import pysbd

    return pysbd.Segmenter(language=lang, clean=False, char_span=True)


def _strip(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


def _sentences(line: str, lang: str) -> list[tuple[int, int]]:
    try:
        spans = [(s.start, s.end) for s in _pysbd(lang).segment(line)]
    except Exception:  # pysbd is rule-based; never let an odd line stop tagging
        spans = [(0, len(line))]
    out, pos = [], 0
    for a, b in spans:
        a, b = max(a, pos), min(max(b, a), len(line))
        if b > a:
            out.append((a, b))
            pos = b
    if not out or out[-1][1] < len(line):
        out.append((out[-1][1] if out else 0, len(line)))
    return _join_abbreviations(line, out) if lang == "en" else out


# Not sentence ends: a cut after a short word and a full stop ("C .", "E.", "sp .", "et al .")
# followed by a word in lower case ("C . albicans", "sp . nov ."), any cut followed by a comma,
# semicolon, colon or closing bracket,
_ABBREV_END = re.compile(r"(?:^|[\s(\[])(?:[A-Za-z]{1,3}|subsp|spp)\s?\.\s*$")
_LOWER_START = re.compile(r"\s*[a-z]")
# and, in tokenized text, a number or name cut at its spaced full stop: "PU . 1", "2 . 2 kb", "UL49 . 5"
_SPACED_POINT_END = re.compile(r"(?:^|\s)(?:[A-Za-z]*\d\w*|[A-Z]{1,3})\s\.\s*$")
_DIGIT_START = re.compile(r"\s*\d")
_CONTINUATION_START = re.compile(r"\s*[,;:)\]]")


def _join_abbreviations(line: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in spans:
        prev = line[out[-1][0]:out[-1][1]] if out else ""
        if out and (_CONTINUATION_START.match(line[a:b])
                    or (_ABBREV_END.search(prev) and _LOWER_START.match(line[a:b]))
                    or (_SPACED_POINT_END.search(prev) and _DIGIT_START.match(line[a:b]))):
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def segment_text(text: str, lang: str | None = None) -> list[Seg]:
    """Segments of ``text`` in order, with their language ('en' or 'zh')."""
    segs: list[Seg] = []
    for m in _LINE_RE.finditer(text):
        line = m.group()
        if not line.strip():
            continue
        line_lang = lang or detect_lang(line)
        for a, b in _sentences(line, line_lang):
            a, b = _strip(text, m.start() + a, m.start() + b)
            if b > a:
                segs.append(Seg(a, b, lang or detect_lang(text[a:b])))
    return segs


class Window(NamedTuple):
    words: list[Word]
    own_start: int   # index (into the window's words) of the first word this window owns
    own_end: int     # one past the last owned word


def windows(words: list[Word], max_words: int = 80, overlap: int = 16) -> list[Window]:
    """Overlapping windows over a long word list. Each word is owned by exactly one window (cut in
    the middle of each overlap); keep an entity from the window that owns its first word."""
    if len(words) <= max_words:
        return [Window(words, 0, len(words))]
    step = max_words - overlap
    starts = list(range(0, max(1, len(words) - overlap), step))
    out = []
    for k, s in enumerate(starts):
        e = min(len(words), s + max_words)
        own_s = 0 if k == 0 else overlap // 2
        own_e = (e - s) if k == len(starts) - 1 else (step + overlap // 2)
        out.append(Window(words[s:e], own_s, min(own_e, e - s)))
        if e == len(words):
            break
    return out


def split_words(text: str, seg: Seg) -> list[Word]:
    return segment_words(text[seg.start:seg.end], offset=seg.start)


_SENT_END = re.compile(r"(?<=[.!?。！？；;])\s+|(?<=[。！？；])")


def sentence_spans(doc: "Document", max_chars: int = 400, soft_max: int | None = None) -> list[tuple[int, int]]:
    """Sentences of a document as offset spans that no entity crosses: the reader's segments (or
    the whole text), each cut further at sentence ends and line breaks when longer than
    ``max_chars``."""
    if soft_max is None:
        soft_max = 160 if doc.lang == "zh" else 400
    base = [(s.start, s.end) for s in doc.segments] or [(0, len(doc.text))]
    out = []
    for a0, b0 in base:
        if b0 - a0 <= max_chars and "\n" not in doc.text[a0:b0].strip():
            if doc.text[a0:b0].strip():
                out.append((a0, b0))
            continue
        piece = doc.text[a0:b0]
        cuts = {0, len(piece)}
        cuts.update(m.end() for m in _SENT_END.finditer(piece))
        cuts.update(m.end() for m in re.finditer(r"\n+", piece))
        for e in doc.entities:
            cuts = {c for c in cuts if not (e.start < a0 + c < e.end)}
        cuts = sorted(cuts)
        for a, b in zip(cuts, cuts[1:]):
            if piece[a:b].strip():
                out.extend(_cut_long(doc, a0 + a, a0 + b, soft_max))
    return out


def _cut_long(doc: "Document", a: int, b: int, soft_max: int) -> list[tuple[int, int]]:
    """Cut a still-long sentence at commas (，,、) into chunks of about ``soft_max`` characters."""
    if b - a <= soft_max:
        return [(a, b)]
    ok = [m.end() for m in re.finditer(r"[，,、；]", doc.text[a:b])]
    ok = [a + c for c in ok if not any(e.start < a + c < e.end for e in doc.entities)]
    out, start = [], a
    last = None
    for c in ok:
        if c - start > soft_max and last is not None:
            out.append((start, last))
            start = last
        last = c
    if b - start > soft_max and last is not None and last > start:
        out.append((start, last))
        start = last
    out.append((start, b))
    return [(x, y) for x, y in out if doc.text[x:y].strip()]
