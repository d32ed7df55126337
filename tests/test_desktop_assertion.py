"""Assertion status in the desktop app (offscreen Qt): the table shows and filters it, negated and
possible entities look different in the text and the table, review changes it (undoable), and the
HTML and PDF reports show it with a legend."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

from biotag.desktop.main_window import MainWindow  # noqa: E402
from biotag.desktop.settings import AppSettings  # noqa: E402
from biotag.runtime.document import Document  # noqa: E402
from biotag.runtime.formats import read_documents  # noqa: E402


@pytest.fixture
def win(qtbot, tmp_path):
    w = MainWindow(AppSettings.at(tmp_path / "settings" / "biotag.ini"), interactive=False, autoload=False)
    qtbot.addWidget(w)
    w.resize(1100, 700)
    w.show()
    return w


def _doc() -> Document:
    text = "Denies chest pain. Possible pneumonia. Mother had breast cancer. Cough for two days."
    d = Document("asr", text, [], "en")
    for mention, typ, a in (("chest pain", "Symptom", "negated"), ("pneumonia", "Disease", "possible"),
                            ("breast cancer", "Disease", "family"), ("Cough", "Symptom", "present")):
        i = text.index(mention)
        d.add(i, i + len(mention), typ, score=0.9, source="model", assertion=a)
    return d


def _open(w, tmp_path, doc):
    p = tmp_path / f"{doc.id}.jsonl"
    p.write_text(doc.to_jsonl_line() + "\n", encoding="utf-8")
    (m,) = w.open_paths([str(p)])
    return m


def _id(m, text):
    (i,) = [i for i, e in m.items() if e.text == text]
    return i


def test_table_column_style_and_filter(win, tmp_path):
    m = _open(win, tmp_path, _doc())
    t = win.table
    from biotag.desktop.entity_table import COLUMNS

    col = COLUMNS.index("Assertion")
    shown = {t.proxy.index(r, 1).data(): t.proxy.index(r, col).data() for r in range(t.proxy.rowCount())}
    assert shown == {"chest pain": "negated", "pneumonia": "possible", "breast cancer": "family",
                     "Cough": "present"}
    fonts = {t.proxy.index(r, 1).data(): t.proxy.index(r, 1).data(Qt.ItemDataRole.FontRole)
             for r in range(t.proxy.rowCount())}
    assert fonts["chest pain"].strikeOut() and not fonts["chest pain"].italic()
    assert fonts["pneumonia"].italic() and not fonts["pneumonia"].strikeOut()
    assert fonts["Cough"] is None
    # the assertion filter
    t.assertion_box.setCurrentIndex(t.assertion_box.findData("negated"))
    assert [t.proxy.index(r, 1).data() for r in range(t.proxy.rowCount())] == ["chest pain"]
    t.assertion_box.setCurrentIndex(0)
    assert t.proxy.rowCount() == 4
    t.search.setText("family")                       # the text filter searches the assertion too
    assert [t.proxy.index(r, 1).data() for r in range(t.proxy.rowCount())] == ["breast cancer"]


def test_text_view_strikes_negated_and_slants_possible(win, tmp_path):
    m = _open(win, tmp_path, _doc())
    sels = win.view.extraSelections()
    struck = {s.cursor.selectedText() for s in sels if s.format.fontStrikeOut()}
    slanted = {s.cursor.selectedText() for s in sels if s.format.fontItalic()}
    assert struck == {"chest pain"} and slanted == {"pneumonia"}
    from biotag.desktop.entity_view import entity_tooltip

    tip = entity_tooltip([(_id(m, "chest pain"), m.entity(_id(m, "chest pain")))], win.colors)
    assert "negated" in tip


def test_review_changes_assertion_with_undo(win, tmp_path):
    m = _open(win, tmp_path, _doc())
    cough, pain = _id(m, "Cough"), _id(m, "chest pain")
    win.select([cough])
    win.actions_by_name["toggle_negated"].trigger()
    e = m.entity(cough)
    assert e.assertion == "negated" and e.meta["review"] == "edited"
    assert e.meta["original"]["assertion"] == "present"
    win.actions_by_name["toggle_negated"].trigger()
    assert m.entity(cough).assertion == "present"
    win.select([pain])
    win.actions_by_name["assert_historical"].trigger()
    assert m.entity(pain).assertion == "historical"
    m.undo_stack.undo()
    assert m.entity(pain).assertion == "negated" and "review" not in m.entity(pain).meta
    m.undo_stack.redo()
    assert m.entity(pain).assertion == "historical"
    # the review result is what is exported
    p = Path(win.export("jsonl", str(tmp_path / "out.jsonl")))
    (back,) = read_documents(p)
    assert {e.text: e.assertion for e in back.entities}["chest pain"] == "historical"


def test_reports_show_assertion_with_legend(win, tmp_path):
    from pypdf import PdfReader

    _open(win, tmp_path, _doc())
    page = Path(win.export("html", str(tmp_path / "r.html"))).read_text(encoding="utf-8")
    assert "negated: struck through" in page and "possible: italic" in page and "family:" in page
    assert "<th>assertion</th>" in page and "<td>negated</td>" in page
    assert 'data-assertion="negated"' in page and "line-through" in page
    pdf = "".join(p.extract_text() for p in PdfReader(str(win.export("pdf", str(tmp_path / "r.pdf")))).pages)
    pdf = " ".join(pdf.split())
    assert "negated: struck through" in pdf and "assertion" in pdf and "possible" in pdf


def test_report_legend_without_assertions():
    from biotag.runtime.report_html import render_report

    d = Document("p", "Cough.", [], "en")
    d.add(0, 5, "Symptom")
    page = render_report([d])
    assert "every entity is present" in page and "line-through" not in page
