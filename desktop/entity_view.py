"""The text with every entity drawn as a coloured bar under it, one row per nesting depth.

A read-only QTextEdit (so text selection, keyboard navigation and Chinese input methods work as
usual) whose lines get extra spacing; the bars are painted in that space from the document
layout's line geometry. The innermost entity of each piece of text also tints it. Hover shows
type, score, source, review mark and exact text; a click selects an entity (clicking the same
text again walks outwards through the entities nested there); a bar selects its own entity.
"""
from __future__ import annotations

import html

from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPainter, QPen, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QTextEdit, QToolTip

from biotag.runtime.document import Entity

from .bars import (BarStyle, OffsetMap, assign_rows, bar_rects, display_text, innermost_pieces,
                   rows_per_block, set_block_spacing, text_rects)
from .review import review_of

TINT_ALPHA = 70
SELECTED_ALPHA = 120
# bar pattern by assertion status (drawn length, period) in pixels: negated dashed, possible dotted
ASSERTION_DASH = {"negated": (6.0, 9.0), "possible": (2.0, 4.0)}


def entity_tooltip(items: list[tuple[int, Entity]], colors: dict[str, str]) -> str:
    """Rich-text tooltip for entities (innermost first)."""
    rows = []
    for _, e in items[:8]:
        c = colors.get(e.type, "#999999")
        txt = e.text if len(e.text) <= 300 else e.text[:300] + "…"
        bits = [f"<b>{html.escape(e.type)}</b>"]
        bits.append("score " + ("—" if e.score is None else f"{e.score:.2f}"))
        if e.source:
            bits.append(html.escape(e.source))
        if e.assertion != "present":
            bits.append(f"<b>{html.escape(e.assertion)}</b>")
        if review_of(e):
            bits.append(f"<i>{html.escape(review_of(e))}</i>")
        bits.append(f"[{e.start}, {e.end})")
        rows.append(f"<tr><td><span style='color:{c}'>&#9632;</span></td><td>{' · '.join(bits)}<br>"
                    f"“{html.escape(txt)}”</td></tr>")
    if len(items) > 8:
        rows.append(f"<tr><td></td><td>… and {len(items) - 8} more</td></tr>")
    return "<table cellspacing='2'>" + "".join(rows) + "</table>"


class EntityView(QTextEdit):
    entityClicked = Signal(int)          # entity id, or -1 for "none"
    contextRequested = Signal(list, QPoint)  # ids under the mouse (innermost first), global pos
    textEdited = Signal()                # the user changed the text of a draft

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setAcceptRichText(False)
        self.setUndoRedoEnabled(False)
        self.setLineWrapMode(QTextEdit.LineWrapMode.WidgetWidth)
        self.setMouseTracking(True)
        self.viewport().setMouseTracking(True)
        self.setPlaceholderText("Paste or type a note here, then press Ctrl+T to tag it")
        self.style_ = BarStyle(height=4.0, gap=2.5, top=2.5)
        self.document().setDocumentMargin(10)
        self._text = ""
        self._map = OffsetMap("")
        self._items: list[tuple[int, Entity]] = []
        self._colors: dict[str, str] = {}
        self._rows: dict[int, int] = {}
        self._qspans: dict[int, tuple[int, int]] = {}
        self._geom: list[tuple[int, QRectF]] | None = None   # (id, bar rect in document coords)
        self._selected: int | None = None
        self._press: QPoint | None = None
        self._setting = False
        self.document().documentLayout().documentSizeChanged.connect(self._invalidate)
        self.textChanged.connect(self._on_text_changed)
        self.set_editable(True)

    # --- content ------------------------------------------------------------------------------
    def set_text(self, text: str, editable: bool) -> None:
        """Show ``text`` (code-point exact; CRLF kept as a trailing blank)."""
        self._setting = True
        try:
            self._text = text
            self._map = OffsetMap(text)
            self._items, self._rows, self._qspans = [], {}, {}
            self._selected = None
            self.setPlainText(display_text(text))
            if self.document().characterCount() - 1 != self._map.to_qt(len(text)):
                # a character Qt rewrites: fall back to a sanitised copy of the same length
                safe = "".join(c if c.isprintable() or c in "\n\t" else " " for c in display_text(text))
                self.setPlainText(safe)
            self.document().setDocumentMargin(10)
        finally:
            self._setting = False
        self.set_editable(editable)
        self._invalidate()

    def set_editable(self, editable: bool) -> None:
        self.setReadOnly(not editable)
        if not editable:
            self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                         | Qt.TextInteractionFlag.TextSelectableByKeyboard)

    def draft_text(self) -> str:
        return self.document().toRawText().replace("\u2029", "\n")

    def _on_text_changed(self):
        if not self._setting and not self.isReadOnly():
            self.textEdited.emit()

    def set_entities(self, items: list[tuple[int, Entity]], colors: dict[str, str],
                     selected: int | None = None) -> None:
        """Entities to draw, as (id, entity); ``colors`` maps type -> '#rrggbb'."""
        self._items = list(items)
        self._colors = dict(colors)
        self._qspans = {i: (self._map.to_qt(e.start), self._map.to_qt(e.end)) for i, e in self._items}
        self._rows = assign_rows([(i, a, b) for i, (a, b) in self._qspans.items()])
        if self._selected not in self._qspans:
            self._selected = None
        if selected is not None:
            self._selected = selected if selected in self._qspans else None
        need = rows_per_block(self.document(), [(a, b, self._rows[i]) for i, (a, b) in self._qspans.items()])
        self._setting = True
        try:
            set_block_spacing(self.document(), need, self.style_)
        finally:
            self._setting = False
        self._update_tints()
        self._invalidate()

    def entity_ids(self) -> list[int]:
        return [i for i, _ in self._items]

    def rows(self) -> dict[int, int]:
        return dict(self._rows)

    def selected(self) -> int | None:
        return self._selected

    def set_selected(self, eid: int | None, scroll: bool = True) -> None:
        self._selected = eid if eid in self._qspans else None
        self._update_tints()
        self.viewport().update()
        if scroll and self._selected is not None:
            self.scroll_to(self._selected)

    def scroll_to(self, eid: int) -> None:
        if eid not in self._qspans:
            return
        a, b = self._qspans[eid]
        rects = text_rects(self.document(), a, b)
        if not rects:
            return
        r = rects[0][0]
        bars = self._bars_of(eid)
        bottom = max([r.bottom()] + [x.bottom() for x in bars])
        vs = self.verticalScrollBar()
        h = self.viewport().height()
        if r.top() < vs.value() or bottom > vs.value() + h:
            vs.setValue(int(max(0, r.top() - h / 3)))

    def selected_span(self) -> tuple[int, int] | None:
        """Code-point span of the text selection, or None."""
        c = self.textCursor()
        if not c.hasSelection():
            return None
        return self._map.to_cp(c.selectionStart()), self._map.to_cp(c.selectionEnd())

    def select_text(self, start: int, end: int) -> None:
        c = QTextCursor(self.document())
        c.setPosition(self._map.to_qt(start))
        c.setPosition(self._map.to_qt(end), QTextCursor.MoveMode.KeepAnchor)
        self.setTextCursor(c)

    # --- drawing ------------------------------------------------------------------------------
    def _invalidate(self, *_):
        self._geom = None
        self.viewport().update()

    def _geometry(self) -> list[tuple[int, QRectF]]:
        if self._geom is None:
            qdoc = self.document()
            geom = []
            for i, (a, b) in self._qspans.items():
                for r in bar_rects(qdoc, a, b, self._rows[i], self.style_):
                    geom.append((i, r))
            self._geom = geom
        return self._geom

    def _bars_of(self, eid: int) -> list[QRectF]:
        return [r for i, r in self._geometry() if i == eid]

    def _offset(self) -> QPointF:
        return QPointF(-self.horizontalScrollBar().value(), -self.verticalScrollBar().value())

    def _update_tints(self) -> None:
        sels = []
        ents = dict(self._items)
        spans = [(i, a, b) for i, (a, b) in self._qspans.items() if review_of(ents[i]) != "rejected"]
        for a, b, i in innermost_pieces(spans):
            sels.append(self._extra(a, b, self._colors.get(ents[i].type, "#999999"), TINT_ALPHA))
        for i, (a, b) in self._qspans.items():
            if review_of(ents[i]) == "rejected":
                s = self._extra(a, b, "#888888", 30)
                s.format.setFontStrikeOut(True)
                sels.append(s)
            elif ents[i].assertion in ("negated", "possible"):
                # negated text struck through, possible text in italics (the tint stays)
                s = self._extra(a, b, "#000000", 0)
                s.format.clearBackground()
                if ents[i].assertion == "negated":
                    s.format.setFontStrikeOut(True)
                else:
                    s.format.setFontItalic(True)
                sels.append(s)
        if self._selected is not None:
            a, b = self._qspans[self._selected]
            sels.append(self._extra(a, b, self._colors.get(ents[self._selected].type, "#999999"),
                                    SELECTED_ALPHA))
        self.setExtraSelections(sels)

    def _extra(self, a: int, b: int, color: str, alpha: int) -> QTextEdit.ExtraSelection:
        s = QTextEdit.ExtraSelection()
        c = QTextCursor(self.document())
        c.setPosition(a)
        c.setPosition(b, QTextCursor.MoveMode.KeepAnchor)
        s.cursor = c
        fmt = QTextCharFormat()
        col = QColor(color)
        col.setAlpha(alpha)
        fmt.setBackground(col)
        s.format = fmt
        return s

    def paintEvent(self, event):
        super().paintEvent(event)
        if not self._items:
            return
        p = QPainter(self.viewport())
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        off = self._offset()
        p.translate(off)
        clip = QRectF(event.rect()).translated(-off)
        ents = dict(self._items)
        paint_bars(p, [(i, ents[i], r) for i, r in self._geometry() if r.intersects(clip.adjusted(0, -4, 0, 4))],
                   self._colors, self._selected)
        if self._selected is not None:
            a, b = self._qspans[self._selected]
            pen = QPen(QColor("#202020"), 1.2)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            for r, _ in text_rects(self.document(), a, b):
                p.drawRoundedRect(r.adjusted(-1, 0, 1, 0), 2, 2)
        p.end()

    # --- hit testing --------------------------------------------------------------------------
    def ids_at(self, pos: QPoint) -> tuple[int | None, list[int]]:
        """(id of the bar under ``pos`` or None, ids of entities covering the character under
        ``pos``, innermost first)."""
        dp = QPointF(pos) - self._offset()
        bar = None
        for i, r in self._geometry():
            if r.adjusted(0, -1.5, 0, 1.5).contains(dp):
                bar = i
                break
        cover: list[int] = []
        q = self.document().documentLayout().hitTest(dp, Qt.HitTestAccuracy.ExactHit)
        if q >= 0:
            for cand in (q, q - 1):
                if cand < 0:
                    continue
                if any(r.adjusted(-0.5, 0, 0.5, 0).contains(dp) for r, _ in text_rects(self.document(), cand, cand + 1)):
                    cover = [i for i, (a, b) in self._qspans.items() if a <= cand < b]
                    break
        cover.sort(key=lambda i: (self._qspans[i][1] - self._qspans[i][0], self._rows.get(i, 0)))
        return bar, cover

    def _hits(self, pos: QPoint) -> list[int]:
        bar, cover = self.ids_at(pos)
        if bar is not None:
            return [bar] + [i for i in cover if i != bar]
        return cover

    def viewportEvent(self, event):
        if event.type() == QEvent.Type.ToolTip:
            ids = self._hits(event.pos())
            if ids:
                ents = dict(self._items)
                QToolTip.showText(event.globalPos(), entity_tooltip([(i, ents[i]) for i in ids], self._colors),
                                  self.viewport())
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().viewportEvent(event)

    def mouseMoveEvent(self, event):
        super().mouseMoveEvent(event)
        if event.buttons() == Qt.MouseButton.NoButton and self.isReadOnly():
            bar, _ = self.ids_at(event.position().toPoint())
            self.viewport().setCursor(Qt.CursorShape.PointingHandCursor if bar is not None
                                      else Qt.CursorShape.IBeamCursor)

    def mousePressEvent(self, event):
        self._press = event.position().toPoint()
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event):
        super().mouseReleaseEvent(event)
        pos = event.position().toPoint()
        if (event.button() != Qt.MouseButton.LeftButton or self._press is None
                or (pos - self._press).manhattanLength() > 4 or self.textCursor().hasSelection()):
            return
        self.click_at(pos)

    def click_at(self, pos: QPoint) -> int | None:
        """Select the entity at ``pos`` (see the module doc); returns its id."""
        bar, cover = self.ids_at(pos)
        if bar is not None:
            eid = bar
        elif cover:
            if self._selected in cover:  # walk outwards through nested entities
                eid = cover[(cover.index(self._selected) + 1) % len(cover)]
            else:
                eid = cover[0]
        else:
            eid = None
        self.set_selected(eid, scroll=False)
        self.entityClicked.emit(-1 if eid is None else eid)
        return eid

    def contextMenuEvent(self, event):
        ids = self._hits(event.pos())
        self.contextRequested.emit(ids, event.globalPos())

    def point_of(self, eid: int, bar: bool = False) -> QPoint:
        """Viewport point in the middle of an entity's first text piece (or bar)."""
        if bar:
            r = self._bars_of(eid)[0]
        else:
            a, b = self._qspans[eid]
            r = text_rects(self.document(), a, b)[0][0]
        return (r.center() + self._offset()).toPoint()

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self._invalidate()


def paint_bars(p: QPainter, bars: list[tuple[int, Entity, QRectF]], colors: dict[str, str],
               selected: int | None = None, scale: float = 1.0) -> None:
    """Draw bars: filled with the type colour, a darker outline so light colours stay visible on
    white, hatched grey for rejected entities, a thin black outline for reviewed ones (accepted,
    edited, added) and a thick dark frame for the selected one. Negated entities get a dashed bar
    and possible ones a dotted bar (their assertion status, see ``ASSERTION_DASH``)."""
    for i, e, r in bars:
        col = QColor(colors.get(e.type, "#999999"))
        rv = review_of(e)
        rejected = rv == "rejected"
        if i == selected:
            r = r.adjusted(0, -0.5 * scale, 0, 0.5 * scale)
            pen = QPen(QColor("#202020"), 1.6 * scale)
        elif rv in ("accepted", "edited", "added"):
            pen = QPen(QColor("#000000"), 1.1 * scale)
        else:
            pen = QPen(col.darker(150), 0.8 * scale)
        p.setPen(pen)
        if rejected:
            p.setBrush(QBrush(QColor("#9a9a9a"), Qt.BrushStyle.BDiagPattern))
        else:
            p.setBrush(col)
        dash = None if rejected else ASSERTION_DASH.get(e.assertion)
        if dash is None:
            p.drawRoundedRect(r, 1.5 * scale, 1.5 * scale)
            continue
        on, period = dash[0] * scale, dash[1] * scale
        x = r.left()
        while x < r.right():
            p.drawRect(QRectF(x, r.top(), min(on, r.right() - x), r.height()))
            x += period
