"""Help (keyboard shortcuts), About (model card, licences) and the batch-tagging dialog."""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox,
                               QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QListWidget, QProgressBar, QPushButton, QTextBrowser, QVBoxLayout,
                               QWidget)

LICENCE_NOTE = (
    "<p><b>Licences.</b> biotag's code is Apache-2.0. The tagging model is derived from Google's "
    "Gemma 3 and is provided under and subject to the <b>Gemma Terms of Use</b> "
    "(ai.google.dev/gemma/terms) and its Prohibited Use Policy; the terms travel with the model "
    "weights. Predictions are machine-made and can be wrong: review them before clinical or "
    "research use.</p>"
    "<p><b>Privacy.</b> biotag works offline: it opens no network connection, sends no telemetry, "
    "never logs document text, and writes files only where you choose.</p>")

MOUSE_HELP = [
    ("Click an entity's text", "select the innermost entity there; click again to walk outwards"),
    ("Click a bar", "select exactly that entity"),
    ("Hover", "type, score, source, review mark and exact text of the entities there"),
    ("Drag over text, then Add", "add a new entity of the chosen type"),
    ("Right-click", "review menu for the entities under the mouse or the selected text"),
    ("Click a table row", "jump to the entity in the text"),
    ("Untick a legend type", "hide that type in the view, table and exports"),
    ("Bar styles", "black outline: reviewed (accepted, edited, added); hatched and struck out: "
                   "rejected (View → Show rejected entities); thick frame: selected"),
    ("Confidence slider", "hide entities scoring below it (no re-tagging; accepted, edited and "
                          "added entities always stay)"),
]


def shortcut_text(action: QAction) -> str:
    keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts()]
    return ", ".join(k for k in keys if k)


def help_html(actions: Sequence[tuple[str, Sequence[QAction]]]) -> str:
    parts = ["<h2>biotag — keyboard and mouse</h2>"]
    for group, acts in actions:
        rows = "".join(
            f"<tr><td width='190' style='padding-right:16px'><code>{html.escape(shortcut_text(a)) or '—'}</code></td>"
            f"<td>{html.escape(a.text().replace('&', ''))}"
            f"{(' — ' + html.escape(a.statusTip())) if a.statusTip() else ''}</td></tr>"
            for a in acts)
        parts.append(f"<h3>{html.escape(group)}</h3><table cellspacing='2' width='100%'>{rows}</table>")
    rows = "".join(f"<tr><td width='190' style='padding-right:16px'><i>{html.escape(a)}</i></td><td>{html.escape(b)}</td></tr>"
                   for a, b in MOUSE_HELP)
    parts.append(f"<h3>Mouse</h3><table cellspacing='2' width='100%'>{rows}</table>")
    parts.append("<h3>Review marks</h3><p>Every export marks reviewed entities in "
                 "<code>meta.review</code> (<i>accepted</i>, <i>edited</i>, <i>added</i>; added "
                 "entities have source <i>manual</i>). Rejected entities are left out of exports. "
                 "Exports contain what the view shows: entities above the confidence threshold and "
                 "of the ticked types.</p>")
    return "".join(parts)


class HelpDialog(QDialog):
    def __init__(self, actions, parent=None):
        super().__init__(parent)
        self.setWindowTitle("biotag — keyboard shortcuts")
        self.browser = QTextBrowser()
        self.browser.setOpenLinks(False)
        self.browser.setHtml(help_html(actions))
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        bb.rejected.connect(self.reject)
        bb.accepted.connect(self.accept)
        lay = QVBoxLayout(self)
        lay.addWidget(self.browser)
        lay.addWidget(bb)
        self.resize(640, 620)


def model_card(bundle_dir: str | None) -> tuple[str, str]:
    """('markdown'|'html', text) describing the bundle: its MODEL_CARD.md (in the bundle folder or
    next to it), else the manifest's metrics."""
    if not bundle_dir:
        return "html", "<p>No model bundle is loaded.</p>"
    root = Path(bundle_dir)
    for p in (root / "MODEL_CARD.md", root.parent / "MODEL_CARD.md", root.parent / f"{root.name}.MODEL_CARD.md"):
        if p.is_file():
            try:
                return "markdown", p.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                pass
    try:
        from biotag.runtime.bundle import Bundle

        b = Bundle.open(root)
    except Exception as exc:
        return "html", f"<p>{html.escape(str(exc))}</p>"
    m = b.manifest
    parts = [f"<h3>{html.escape(b.name)} {html.escape(b.version)}</h3>",
             f"<p>Folder: <code>{html.escape(str(root))}</code></p>"]
    llm = m.get("llm") or {}
    if llm:
        parts.append(f"<p>Model file: <code>{html.escape(str(llm.get('file', '')))}</code>, "
                     f"quantization {html.escape(str(llm.get('quant', '?')))}</p>")
    if m.get("base_model"):
        parts.append("<p>Base model: <code>" + html.escape(json.dumps(m["base_model"], ensure_ascii=False)) + "</code></p>")
    if m.get("profiles"):
        parts.append("<p>Profiles: " + html.escape(", ".join(f"{k}: {'/'.join(v)}" for k, v in m["profiles"].items())) + "</p>")
    metrics = m.get("metrics")
    parts.append("<h4>Metrics</h4>" + (
        "<pre>" + html.escape(json.dumps(metrics, indent=1, ensure_ascii=False)) + "</pre>"
        if metrics else "<p>The manifest lists no metrics and no MODEL_CARD.md was found.</p>"))
    return "html", "".join(parts)


class AboutDialog(QDialog):
    def __init__(self, bundle_dir: str | None, model_name: str = "", parent=None):
        super().__init__(parent)
        self.setWindowTitle("About biotag")
        try:
            from importlib.metadata import version

            ver = version("biotag")
        except Exception:
            ver = "?"
        head = QLabel(f"<h2>biotag {html.escape(ver)}</h2><p>Offline biomedical named-entity tagger "
                      f"(English and Chinese).</p><p>Model: <b>{html.escape(model_name or 'none loaded')}</b></p>")
        head.setWordWrap(True)
        self.card = QTextBrowser()
        self.card.setOpenLinks(False)
        kind, text = model_card(bundle_dir)
        if kind == "markdown":
            self.card.setMarkdown(text)
        else:
            self.card.setHtml(text)
        lic = QLabel(LICENCE_NOTE)
        lic.setWordWrap(True)
        lic.setTextFormat(Qt.TextFormat.RichText)
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        bb.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(head)
        lay.addWidget(QLabel("<b>Model card</b>"))
        lay.addWidget(self.card, 1)
        lay.addWidget(lic)
        lay.addWidget(bb)
        self.resize(700, 640)


class BatchDialog(QDialog):
    """Choose input and output folders and a format; shows progress; Start/Cancel."""

    startRequested = Signal(object)   # BatchSpec
    cancelRequested = Signal()

    def __init__(self, settings, threshold: float, lang: str | None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Batch tagging")
        self.settings = settings
        self.inp = QLineEdit()
        self.out = QLineEdit()
        self.inp.setPlaceholderText("folder with .txt / .md files (searched recursively)")
        self.out.setPlaceholderText("folder for the results (existing results are kept: resumable)")
        bi, bo = QPushButton("Choose…"), QPushButton("Choose…")
        bi.clicked.connect(lambda: self._browse(self.inp, "Folder of documents to tag"))
        bo.clicked.connect(lambda: self._browse(self.out, "Folder for the results"))
        ri, ro = QHBoxLayout(), QHBoxLayout()
        ri.addWidget(self.inp, 1)
        ri.addWidget(bi)
        ro.addWidget(self.out, 1)
        ro.addWidget(bo)
        self.fmt = QComboBox()
        for label, name in (("JSONL (canonical)", "jsonl"), ("BRAT standoff", "brat"), ("BioC XML", "bioc-xml"),
                            ("BioC JSON", "bioc-json"), ("CSV", "csv")):
            self.fmt.addItem(label, name)
        self.html = QCheckBox("Also write an HTML report per document")
        self.html.setChecked(True)
        self.lang = QComboBox()
        self.lang.addItem("Detect per sentence", None)
        self.lang.addItem("English", "en")
        self.lang.addItem("Chinese", "zh")
        self.lang.setCurrentIndex(max(0, self.lang.findData(lang)))
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.0, 1.0)
        self.threshold.setSingleStep(0.05)
        self.threshold.setDecimals(2)
        self.threshold.setValue(threshold)
        self.threshold.setToolTip("Entities scoring below this are not written")
        form = QFormLayout()
        form.addRow("Documents:", ri)
        form.addRow("Results:", ro)
        form.addRow("Format:", self.fmt)
        form.addRow("", self.html)
        form.addRow("Language:", self.lang)
        form.addRow("Minimum score:", self.threshold)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status = QLabel("Documents whose results already exist are skipped, so an interrupted "
                             "batch continues where it stopped.")
        self.status.setWordWrap(True)
        self.log = QListWidget()
        self.start = QPushButton("Start")
        self.start.setDefault(True)
        self.cancel = QPushButton("Cancel batch")
        self.cancel.setEnabled(False)
        close = QPushButton("Close")
        self.start.clicked.connect(self._start)
        self.cancel.clicked.connect(self.cancelRequested)
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.start)
        buttons.addWidget(self.cancel)
        buttons.addWidget(close)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addWidget(self.log, 1)
        lay.addLayout(buttons)
        self.resize(640, 520)
        self.opts_factory = None

    def _browse(self, edit: QLineEdit, title: str):
        d = QFileDialog.getExistingDirectory(self, title, edit.text() or self.settings.last_dir)
        if d:
            edit.setText(d)

    def spec(self):
        from .worker import BatchSpec

        return BatchSpec(self.inp.text().strip(), self.out.text().strip(), self.fmt.currentData(),
                         self.html.isChecked(), self.lang.currentData(), None)

    def _start(self):
        spec = self.spec()
        if not spec.input_dir or not Path(spec.input_dir).is_dir():
            self.status.setText("Choose an existing folder of documents.")
            return
        if not spec.output_dir:
            self.status.setText("Choose a folder for the results.")
            return
        if Path(spec.output_dir).resolve() == Path(spec.input_dir).resolve():
            self.status.setText("Choose a results folder different from the documents folder.")
            return
        self.log.clear()
        self.set_running(True)
        self.startRequested.emit(spec)

    def set_running(self, running: bool):
        self.start.setEnabled(not running)
        self.cancel.setEnabled(running)

    def on_progress(self, done: int, total: int, doc_id: str):
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        self.status.setText(f"{done} of {total} documents" + (f" — {doc_id}" if done < total else ""))

    def on_finished(self, res):
        self.set_running(False)
        for d in res.done:
            self.log.addItem(f"tagged   {d}")
        for d in res.skipped:
            self.log.addItem(f"skipped  {d} (result exists)")
        for d, msg in res.failed:
            self.log.addItem(f"FAILED   {d}: {msg}" if d else f"FAILED: {msg}")
        msg = (f"{len(res.done)} tagged ({res.entities} entities), {len(res.skipped)} already done, "
               f"{len(res.failed)} failed")
        if res.cancelled:
            msg = "Cancelled — " + msg + ". Start again to continue."
        self.status.setText(msg)
