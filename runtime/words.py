"""Deterministic word segmentation with exact character offsets.

Rules: whitespace separates words and is never part of one; a run of letters, digits and
combining marks is one word; every other visible character (punctuation, symbols, hyphens,
slashes, brackets, emoji, zero-width characters) is a word of its own; each CJK character
(Han, kana, fullwidth punctuation) is a word of its own. So "BRCA1-associated" gives BRCA1, -,
associated and "腹部疼痛" gives 腹, 部, 疼, 痛.
"""
from __future__ import annotations

import re
from typing import NamedTuple

_CJK = ("\u2e80-\u2fdf\u3001-\u303f\u3040-\u30ff\u3100-\u312f\u3190-\u31ff\u3400-\u4dbf"
        "\u4e00-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef\U00020000-\U0003134f")
_WORD_RE = re.compile(
    rf"(?P<cjk>[{_CJK}])"
    rf"|(?P<word>(?:(?![{_CJK}])[^\W_])(?:(?![{_CJK}])[^\W_]|[\u0300-\u036f\u1ab0-\u1aff\u20d0-\u20ff])*)"
    r"|(?P<other>\S)"
)
_CJK_RE = re.compile(rf"[{_CJK}]")


class Word(NamedTuple):
    text: str
    start: int
    end: int


def segment_words(text: str, offset: int = 0) -> list[Word]:
    """Words of ``text`` with offsets (shifted by ``offset``)."""
    return [Word(m.group(), m.start() + offset, m.end() + offset) for m in _WORD_RE.finditer(text)]


def is_cjk(ch: str) -> bool:
    return bool(_CJK_RE.fullmatch(ch))


def has_cjk(text: str) -> bool:
    return bool(_CJK_RE.search(text))


def boundary_sets(words: list[Word]) -> tuple[set[int], set[int]]:
    """Character offsets where a word starts / ends."""
    return {w.start for w in words}, {w.end for w in words}


def char_span_to_words(words: list[Word], start: int, end: int) -> tuple[int, int] | None:
    """Word-index span [i, j) whose characters are exactly [start, end), or None when the span does
    not fall on word boundaries."""
    import bisect

    starts = [w.start for w in words]
    i = bisect.bisect_left(starts, start)
    if i >= len(words) or words[i].start != start:
        return None
    ends = [w.end for w in words]
    j = bisect.bisect_left(ends, end)
    if j >= len(words) or words[j].end != end or j < i:
        return None
    return i, j + 1


def snap_span_to_words(words: list[Word], start: int, end: int) -> tuple[int, int] | None:
    """Smallest word-index span covering [start, end) (entities cut inside a word are widened)."""
    idx = [k for k, w in enumerate(words) if w.start < end and start < w.end]
    if not idx:
        return None
    return idx[0], idx[-1] + 1
