"""Exports of the reviewed documents: HTML report, PDF report and the data formats.

The callers pass documents from ``DocumentModel.to_document`` (threshold and type filter
applied, rejected entities removed, review marks in ``entity.meta["review"]``).

* HTML: ``runtime.report_html.render_report`` (self-contained; its table has a review column).
* PDF: QPdfWriter. The text is laid out by a QTextDocument and the nested bars are painted from
  its line geometry, as in the app (Qt rich text ignores CSS borders on spans, so the HTML report
  cannot simply be printed); the innermost entity tints its text; then a table of the entities
  with their review marks.
* JSONL, BRAT, BioC XML/JSON, CSV: ``runtime.formats.write_documents``. CSV carries no entity
  meta, so a ``review`` column is appended (``read_documents`` ignores extra columns).
"""
from __future__ import annotations

import csv
import datetime as _dt
import html
import io
import os
from pathlib import Path
from typing import Sequence

from PySide6.QtCore import QMarginsF, QRectF, QSizeF, Qt
from PySide6.QtGui import (QAbstractTextDocumentLayout, QColor, QFont, QPageLayout, QPageSize,
                           QPainter, QPdfWriter, QTextBlockFormat, QTextCharFormat, QTextCursor,
                           QTextDocument, QTextFormat)

from biotag.runtime.document import Document
from biotag.runtime.errors import InputError
from biotag.runtime.report_html import assertion_legend, render_report, type_colors
from biotag.runtime.textio import atomic_write_text

from .bars import (BarStyle, OffsetMap, assign_rows, bar_rects, display_text, innermost_pieces,
                   rows_per_block, set_block_spacing)
from .entity_view import paint_bars
from .review import review_of

DATA_FORMATS = {  # menu label -> (format name, file filter or None for a folder)
    "JSONL (canonical)": ("jsonl", "JSON Lines (*.jsonl)"),
    "BRAT standoff folder": ("brat", None),
    "BioC XML": ("bioc-xml", "BioC XML (*.xml)"),
    "BioC JSON": ("bioc-json", "BioC JSON (*.json)"),
    "CSV": ("csv", "CSV (*.csv)"),
}


def all_colors(types) -> dict[str, str]:
    """Colour per type: ``report_html.type_colors`` (colour-blind-safe palette), except that when
    two of ``types`` would share a colour (the palette has 17 colours for 25+ types) the later
    type (in canonical order) takes the first palette colour no other present type uses."""
    from biotag.runtime.labels import TYPE_ORDER
    from biotag.runtime.report_html import PALETTE

    types = set(types)
    out = type_colors(list(TYPE_ORDER) + sorted(types - set(TYPE_ORDER)))
    taken: set[str] = set()
    for t in [t for t in TYPE_ORDER if t in types] + sorted(types - set(TYPE_ORDER)):
        c = out[t]
        if c in taken:
            free = [p for p in PALETTE if p not in taken]
            c = free[0] if free else c
        out[t] = c
        taken.add(c)
    return out


def doc_types(docs: Sequence[Document]) -> set[str]:
    return {e.type for d in docs for e in d.entities}


def write_html(docs: Sequence[Document], path: str | os.PathLike, bundle: str = "",
               title: str = "biotag report") -> None:
    atomic_write_text(path, render_report(list(docs), bundle, title))


def write_data(docs: Sequence[Document], path: str | os.PathLike, fmt: str) -> None:
    from biotag.runtime.formats import write_documents

    docs = list(docs)
    write_documents(docs, path, fmt)
    if fmt == "csv":
        _add_review_column(docs, Path(path))


def _add_review_column(docs: Sequence[Document], path: Path) -> None:
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    marks = []
    for d in docs:
        marks.append("")  # the document row
        marks.extend(review_of(e) for e in d.sorted_entities())
    if len(rows) != len(marks) + 1:  # the writer changed: leave its file as it is
        return
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(rows[0] + ["review"])
    for r, m in zip(rows[1:], marks):
        w.writerow(r + [m])
    atomic_write_text(path, buf.getvalue())


# --- PDF ------------------------------------------------------------------------------------
def _blend(color: str, alpha: float) -> QColor:
    c = QColor(color)
    return QColor(round(255 - (255 - c.red()) * alpha), round(255 - (255 - c.green()) * alpha),
                  round(255 - (255 - c.blue()) * alpha))


def _entity_table_html(d: Document, colors: dict[str, str]) -> str:
    rows = []
    for e in d.sorted_entities():
        c = colors.get(e.type, "#999999")
        rows.append(
            f"<tr><td><span style='color:{c}'>&#9632;</span> {html.escape(e.type)}</td>"
            f"<td>{html.escape(e.text)}</td><td align='right'>{e.start}</td><td align='right'>{e.end}</td>"
            f"<td align='right'>{'' if e.score is None else f'{e.score:.2f}'}</td>"
            f"<td>{html.escape(e.source or '')}</td><td>{e.assertion}</td>"
            f"<td>{html.escape(review_of(e))}</td></tr>")
    return ("<table border='1' cellspacing='0' cellpadding='3' width='100%' style='border-color:#bbbbbb'>"
            "<tr style='background:#f0f0f0'><th>type</th><th>text</th><th>start</th><th>end</th>"
            "<th>score</th><th>source</th><th>assertion</th><th>review</th></tr>" + "".join(rows) + "</table>")


def write_pdf(docs: Sequence[Document], path: str | os.PathLike, bundle: str = "",
              title: str = "biotag report", font_families: Sequence[str] | None = None,
              font_size: float = 10.5) -> None:
    """A PDF report: per document a header, the text with nested entity bars and a table."""
    path = Path(path)
    if path.parent and not path.parent.is_dir():
        raise InputError(f"{path.parent}: no such folder")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        _write_pdf(docs, path, tmp, bundle, title, font_families, font_size)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_pdf(docs, path: Path, tmp: Path, bundle, title, font_families, font_size) -> None:
    writer = QPdfWriter(str(tmp))
    writer.setResolution(300)
    writer.setPageSize(QPageSize(QPageSize.PageSizeId.A4))
    writer.setPageMargins(QMarginsF(15, 15, 15, 18), QPageLayout.Unit.Millimeter)
    writer.setTitle(title)
    writer.setCreator("biotag")
    rect = writer.pageLayout().paintRectPixels(writer.resolution())
    w, h = float(rect.width()), float(rect.height())
    scale = writer.resolution() / 96.0
    style = BarStyle().scaled(scale)

    qdoc = QTextDocument()
    qdoc.documentLayout().setPaintDevice(writer)
    qdoc.setPageSize(QSizeF(w, h))
    qdoc.setDocumentMargin(0)
    font = QFont()
    from .fonts import families   # the shipped CJK font when the system has none

    font.setFamilies(list(font_families or families()))
    font.setPointSizeF(font_size)
    qdoc.setDefaultFont(font)
    colors = all_colors(doc_types(docs))
    cur = QTextCursor(qdoc)
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    spans = []       # (doc index, id, qt start, qt end, row, entity)
    spacing: list[tuple[int, int, dict]] = []
    plain = QTextCharFormat()
    plain.setFont(font)
    for k, d in enumerate(docs):
        bf = QTextBlockFormat()
        if k:
            bf.setPageBreakPolicy(QTextFormat.PageBreakFlag.PageBreak_AlwaysBefore)
        if k:
            cur.insertBlock(bf, plain)
        types = sorted({e.type for e in d.entities})
        counts = {t: sum(1 for e in d.entities if e.type == t) for t in types}
        reviewed = sum(1 for e in d.entities if review_of(e))
        legend = " &nbsp; ".join(f"<span style='color:{colors[t]}'>&#9632;</span> {html.escape(t)} ({counts[t]})"
                                 for t in types)
        cur.insertHtml(
            f"<h2>{html.escape(title if len(docs) == 1 else d.id)}</h2>"
            f"<p style='color:#555555'>Document {html.escape(d.id)} · {len(d.entities)} entities"
            f" ({reviewed} reviewed) · generated {now} by biotag"
            f"{(' · model ' + html.escape(bundle)) if bundle else ''}</p>"
            f"<p>{legend or 'No entities.'}</p>"
            f"<p style='color:#555555'>{assertion_legend([d])}</p>"
            "<p style='color:#555555'>Bars under the text mark entities, one row per nesting depth "
            "(the outermost entity lowest); the innermost entity tints its text.</p>")
        cur.insertBlock(QTextBlockFormat(), plain)
        first_block = cur.blockNumber()
        base = cur.position()
        cur.insertText(display_text(d.text), plain)
        last_block = cur.blockNumber()
        omap = OffsetMap(d.text)
        ents = d.sorted_entities()
        q = [(i, base + omap.to_qt(e.start), base + omap.to_qt(e.end)) for i, e in enumerate(ents)]
        rows = assign_rows(q)
        for a, b, i in innermost_pieces(q):
            c = QTextCursor(qdoc)
            c.setPosition(a)
            c.setPosition(b, QTextCursor.MoveMode.KeepAnchor)
            f = QTextCharFormat()
            f.setBackground(_blend(colors.get(ents[i].type, "#999999"), 0.28))
            c.mergeCharFormat(f)
        for i, a, b in q:   # negated text struck through, possible text in italics
            if ents[i].assertion in ("negated", "possible"):
                c = QTextCursor(qdoc)
                c.setPosition(a)
                c.setPosition(b, QTextCursor.MoveMode.KeepAnchor)
                f = QTextCharFormat()
                if ents[i].assertion == "negated":
                    f.setFontStrikeOut(True)
                else:
                    f.setFontItalic(True)
                c.mergeCharFormat(f)
        spacing.append((first_block, last_block, rows_per_block(qdoc, [(a, b, rows[i]) for i, a, b in q])))
        spans.extend((k, i, a, b, rows[i], ents[i]) for i, a, b in q)
        cur.movePosition(QTextCursor.MoveOperation.End)
        cur.insertBlock(QTextBlockFormat(), plain)
        cur.insertHtml("<p></p>" + _entity_table_html(d, colors))
    # block formats are in 96-dpi pixels (the layout scales them to the writer), bars in device pixels
    for first, last, need in spacing:
        set_block_spacing(qdoc, need, BarStyle(), first, last, base=2.0)

    bars_by_page: dict[int, list] = {}
    for k, i, a, b, row, e in spans:
        for r in bar_rects(qdoc, a, b, row, style):
            page = int((r.top() - style.top - row * (style.height + style.gap) - 1) // h)
            bars_by_page.setdefault(page, []).append(((k, i), e, r))

    painter = QPainter()
    if not painter.begin(writer):
        raise InputError(f"{path}: cannot write the PDF")
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        pages = max(1, qdoc.pageCount())
        foot = QFont(font)
        foot.setPointSizeF(8)
        for page in range(pages):
            if page:
                writer.newPage()
            painter.save()
            painter.translate(0, -page * h)
            clip = QRectF(0, page * h, w, h)
            ctx = QAbstractTextDocumentLayout.PaintContext()
            ctx.clip = clip
            painter.setClipRect(clip)
            qdoc.documentLayout().draw(painter, ctx)
            painter.setClipping(False)
            paint_bars(painter, bars_by_page.get(page, []), colors, None, scale)
            painter.restore()
            painter.setFont(foot)
            painter.setPen(QColor("#777777"))
            painter.drawText(QRectF(0, h + 4 * scale, w, 14 * scale), int(Qt.AlignmentFlag.AlignRight),
                             f"{title} · page {page + 1} of {pages}")
    finally:
        painter.end()
    del writer
    os.replace(tmp, path)


__all__ = ["DATA_FORMATS", "write_html", "write_pdf", "write_data", "all_colors"]
