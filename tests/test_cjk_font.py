"""Chinese on a machine without any CJK font: the GUI, its PDF report and the HTML report use the
Noto Sans CJK font shipped with biotag. The desktop part runs with fontconfig pointed at an empty
font folder, so no system font can help."""
import base64
import io
import json
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"

DESKTOP = r"""
import json, os, sys
from pathlib import Path
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtGui import QFontDatabase, QFontMetrics, QGuiApplication, QImage, QPainter, QColor
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
app = QApplication([])
from biotag.desktop import fonts
before = fonts.has_cjk_font()
from biotag.desktop.app import make_app
make_app()
from biotag.desktop.export import write_pdf
from biotag.runtime.formats import read_documents
docs = read_documents(sys.argv[1])
write_pdf(docs, sys.argv[2], "test 0")
f = fonts.text_font(14)
fm = QFontMetrics(f)
text = docs[0].text
# glyphs drawn for the Chinese text differ from the box Qt draws for a character no font has
def draw(s):
    img = QImage(400, 60, QImage.Format.Format_RGB32)
    img.fill(QColor("white"))
    p = QPainter(img)
    p.setFont(f)
    p.drawText(5, 40, s)
    p.end()
    return bytes(img.constBits())
chars = [c for c in text if "\u4e00" <= c <= "\u9fff"][:6]
print(json.dumps({"before": before, "after": fonts.has_cjk_font(), "shipped": fonts.ensure_cjk_font(),
                  "system_families": len(QFontDatabase.families()),
                  "in_font": all(fm.inFontUcs4(ord(c)) for c in chars),
                  "distinct": len({draw(c) for c in chars}), "n": len(chars)}))
"""


def test_desktop_gui_and_pdf_show_chinese_without_system_fonts(tmp_path):
    pytest.importorskip("PySide6")
    from conftest import QT_GUI_ERROR

    if QT_GUI_ERROR:
        pytest.skip(QT_GUI_ERROR)
    from pypdf import PdfReader

    from biotag.runtime.cjk_font import font_path

    assert font_path() is not None, "the noto-cjk-sans-otc package (a base dependency) is not installed"
    empty = tmp_path / "no-fonts"
    empty.mkdir()
    conf = tmp_path / "fonts.conf"
    conf.write_text(f"<?xml version='1.0'?>\n<!DOCTYPE fontconfig SYSTEM 'fonts.dtd'>\n<fontconfig>"
                    f"<dir>{empty}</dir><cachedir>{tmp_path / 'fc-cache'}</cachedir></fontconfig>\n")
    script = tmp_path / "desktop.py"
    script.write_text(DESKTOP, encoding="utf-8")
    pdf = tmp_path / "report.pdf"
    env = {**os.environ, "FONTCONFIG_FILE": str(conf), "FONTCONFIG_PATH": str(tmp_path),
           "QT_QPA_FONTDIR": str(empty)}
    r = subprocess.run([sys.executable, str(script), str(EXAMPLES / "nested_zh.jsonl"), str(pdf)],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["before"] is False, "fontconfig still finds a system CJK font: the test proves nothing"
    assert got["shipped"] and "Noto Sans CJK SC" in got["shipped"] and got["after"] is True
    assert got["in_font"] and got["distinct"] == got["n"] >= 4     # real glyphs, not one box shape
    # the PDF: its Chinese text is extractable, not \x00 boxes
    # NFKC: Qt maps some CJK glyphs to Kangxi radicals in the PDF's ToUnicode; no whitespace: lines break
    norm = lambda s: re.sub(r"\s+", "", unicodedata.normalize("NFKC", s))   # noqa: E731
    pdf_text = norm("".join(p.extract_text() for p in PdfReader(str(pdf)).pages))
    doc = json.loads((EXAMPLES / "nested_zh.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert "\x00" not in pdf_text
    for e in doc["entities"]:
        assert norm(e["text"]) in pdf_text, e["text"]


def test_html_report_embeds_the_glyphs_of_its_chinese_text():
    from fontTools.ttLib import TTFont

    from biotag.runtime.document import Document
    from biotag.runtime.report_html import render_report

    text = "患者发热三天，伴咳嗽。Aspirin."
    page = render_report([Document("zh", text, [], "zh")])
    m = re.search(r"@font-face\{font-family:'biotag CJK';src:url\(data:font/otf;base64,([A-Za-z0-9+/=]+)\)", page)
    assert m, page[:500]
    font = TTFont(io.BytesIO(base64.b64decode(m.group(1))))
    cmap = font.getBestCmap()
    assert all(ord(c) in cmap for c in "患者发热三天伴咳嗽，。")
    assert len(cmap) < 200                                      # a subset, not the whole face
    assert "'biotag CJK'" in page.split("@font-face", 1)[1]     # and listed in the body's fonts
    assert "OFL" in str(font["name"].getDebugName(13)) or "Open Font" in str(font["name"].getDebugName(13))
    english = render_report([Document("en", "Aspirin and fever.", [], "en")])
    assert "@font-face" not in english                          # nothing embedded without CJK text
