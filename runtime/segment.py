"""Split clinical and scientific text into segments with exact offsets.

Lines first (notes are line-oriented: headings such as "HPI:", bulleted and numbered lists), then
sentences inside each line with pysbd (handles "Dr.", "e.g.", "b.i.d.", "2.5 mg"), Chinese
sentence punctuation included. Segments never include surrounding whitespace. Segments longer than
``max_words`` are cut into overlapping word windows by ``windows``.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from .words import Word, has_cjk, is_cjk, segment_words

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
