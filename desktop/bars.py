"""Geometry of nested entity bars, shared by the text view and the PDF export.

Each entity is drawn as a coloured bar under its text. Bars sit in *rows* below each line: the
innermost entity gets the row nearest the text, an entity that contains others sits below all of
them, and entities that overlap without nesting (crossing, or the same span with another type)
never share a row. So every entity keeps its own visible bar, however deep the nesting.

Offsets: documents use Python code-point offsets; Qt's QTextDocument counts UTF-16 units and turns
``\\r\\n`` into one paragraph break. ``display_text`` gives a text of the same UTF-16 length that Qt
keeps position for position, and ``OffsetMap`` converts between the two.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Iterable, Sequence

from PySide6.QtCore import QRectF
from PySide6.QtGui import QTextBlockFormat, QTextCursor, QTextDocument


# --- text and offsets ------------------------------------------------------------------------
def display_text(text: str) -> str:
    """``text`` as QTextDocument can hold it one-to-one: ``\\r\\n`` -> `` \\n`` (the CR becomes an
    invisible trailing space), a lone ``\\r`` -> ``\\n``. Same UTF-16 length as ``text``."""
    return text.replace("\r\n", " \n").replace("\r", "\n")


class OffsetMap:
    """Code point offsets <-> UTF-16 (Qt) positions of one text."""

    def __init__(self, text: str):
        self.n = len(text)
        self.astral = [i for i, c in enumerate(text) if ord(c) > 0xFFFF]  # 2 UTF-16 units each

    def to_qt(self, cp: int) -> int:
        return cp + bisect.bisect_left(self.astral, cp)

    def to_cp(self, q: int) -> int:
        # code point i is at Qt position i + (#astral before i); invert by search
        lo, hi = 0, self.n
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.to_qt(mid) <= q:
                lo = mid
            else:
                hi = mid - 1
        return lo


# --- rows ---------------------------------------------------------------------------------
def clusters(spans: Sequence[tuple[object, int, int]]) -> list[list[tuple[object, int, int]]]:
    """Groups of spans that overlap (transitively); spans in different groups never overlap, so
    rows and tints can be worked out per group (fast on long documents)."""
    out: list[list] = []
    end = -1
    for s in sorted(spans, key=lambda s: (s[1], s[2])):
        if not out or s[1] >= end:
            out.append([s])
            end = s[2]
        else:
            out[-1].append(s)
            end = max(end, s[2])
    return out


def assign_rows(spans: Sequence[tuple[object, int, int]]) -> dict[object, int]:
    """Row (0 = nearest the text) of each ``(key, start, end)``: an entity lies below every entity
    it contains, and overlapping entities never share a row."""
    rows: dict[object, int] = {}
    for group in clusters(spans):
        placed: list[tuple[int, int, int]] = []  # (start, end, row)
        for key, a, b in sorted(group, key=lambda s: (s[2] - s[1], s[1], str(s[0]))):
            r = 0
            for (s, e, rr) in placed:
                if a <= s and e <= b:  # contained (or the same span, placed earlier)
                    r = max(r, rr + 1)
            taken = {rr for (s, e, rr) in placed if s < b and a < e}
            while r in taken:
                r += 1
            rows[key] = r
            placed.append((a, b, r))
    return rows


def innermost_pieces(spans: Sequence[tuple[object, int, int]]) -> list[tuple[int, int, object]]:
    """``(start, end, key)`` pieces of text covered by at least one span, each with the shortest
    (innermost) span covering it."""
    out = []
    for group in clusters(spans):
        cuts = sorted({x for _, a, b in group for x in (a, b)})
        for a, b in zip(cuts, cuts[1:]):
            cover = [(e - s, s, str(k), k) for k, s, e in group if s <= a and b <= e]
            if cover:
                out.append((a, b, min(cover)[3]))
    return out


# --- bar geometry on a laid-out QTextDocument -----------------------------------------------
@dataclass
class BarStyle:
    height: float = 4.0      # bar thickness
    gap: float = 2.0         # space between rows
    top: float = 2.0         # space between the glyphs and the first row

    def scaled(self, f: float) -> "BarStyle":
        return BarStyle(self.height * f, self.gap * f, self.top * f)

    def room(self, rows: int) -> float:
        """Extra line spacing needed for ``rows`` rows of bars."""
        return 0.0 if rows <= 0 else self.top + rows * (self.height + self.gap)


def set_block_spacing(qdoc: QTextDocument, rows_by_block: dict[int, int], style: BarStyle,
                      first: int = 0, last: int | None = None, base: float = 2.0) -> None:
    """Give each block (by block number, between ``first`` and ``last``) the extra line spacing
    its rows of bars need."""
    block = qdoc.findBlockByNumber(first)
    cur = QTextCursor(qdoc)
    while block.isValid() and (last is None or block.blockNumber() <= last):
        want = base + style.room(rows_by_block.get(block.blockNumber(), 0))
        fmt = block.blockFormat()
        if (fmt.lineHeightType() != QTextBlockFormat.LineHeightTypes.LineDistanceHeight.value
                or abs(fmt.lineHeight() - want) > 0.01):
            fmt.setLineHeight(want, QTextBlockFormat.LineHeightTypes.LineDistanceHeight.value)
            cur.setPosition(block.position())
            cur.setBlockFormat(fmt)
        block = block.next()


def rows_per_block(qdoc: QTextDocument, spans: Iterable[tuple[int, int, int]]) -> dict[int, int]:
    """Rows of bars needed by each block, from ``(qt_start, qt_end, row)``."""
    need: dict[int, int] = {}
    for a, b, row in spans:
        first = qdoc.findBlock(a).blockNumber()
        last = qdoc.findBlock(max(a, b - 1)).blockNumber()
        for n in range(first, last + 1):
            need[n] = max(need.get(n, 0), row + 1)
    return need


def text_rects(qdoc: QTextDocument, a: int, b: int) -> list[tuple[QRectF, float]]:
    """Rectangles (document coordinates) of the glyphs of Qt positions ``[a, b)``, one per visual
    line, each with the y of that line's glyph bottom."""
    out = []
    lay = qdoc.documentLayout()
    block = qdoc.findBlock(a)
    while block.isValid() and block.position() < b:
        layout = block.layout()
        origin = lay.blockBoundingRect(block).topLeft()
        bpos = block.position()
        for i in range(layout.lineCount()):
            line = layout.lineAt(i)
            ls = bpos + line.textStart()
            le = ls + line.textLength()
            s, t = max(a, ls), min(b, le)
            if s >= t:
                continue
            x1 = line.cursorToX(s - bpos)[0]
            x2 = line.cursorToX(t - bpos)[0]
            if x2 < x1:
                x1, x2 = x2, x1
            if x2 - x1 < 1:
                x2 = x1 + 1
            y = origin.y() + line.y()
            bottom = y + line.ascent() + line.descent()
            out.append((QRectF(origin.x() + x1, y, x2 - x1, bottom - y), bottom))
        block = block.next()
    return out


def bar_rects(qdoc: QTextDocument, a: int, b: int, row: int, style: BarStyle) -> list[QRectF]:
    """The bar of an entity at Qt positions ``[a, b)`` in row ``row``: one rectangle per line."""
    out = []
    for rect, bottom in text_rects(qdoc, a, b):
        y = bottom + style.top + row * (style.height + style.gap)
        out.append(QRectF(rect.x(), y, rect.width(), style.height))
    return out
