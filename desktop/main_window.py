"""The main window: open or paste a note, tag it off the GUI thread, review entities, export.

Layout: a banner (model status), the text with nested entity bars on the left; the legend (type
toggles) and the entity table on the right; a toolbar with the document, language and confidence
controls; progress and cancel in the status bar.
"""
from __future__ import annotations

from pathlib import Path

import shiboken6

from PySide6.QtCore import QByteArray, QPoint, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence, QUndoGroup
from PySide6.QtWidgets import (QApplication, QCheckBox, QComboBox, QFileDialog, QFrame, QHBoxLayout,
                               QInputDialog, QLabel, QMainWindow, QMenu, QMessageBox,
                               QProgressBar, QPushButton, QSlider, QSplitter, QToolButton,
                               QVBoxLayout, QWidget)

from biotag.runtime.document import ASSERTIONS, Document, Segment
from biotag.runtime.errors import BiotagError
from biotag.runtime.labels import CANONICAL_TYPES, TYPE_ORDER

from . import export as exporting
from .dialogs import AboutDialog, BatchDialog, HelpDialog
from .entity_table import EntityTable, Legend, swatch
from .entity_view import EntityView
from .fonts import ensure_cjk_font, has_cjk_font, text_font
from .review import DocumentModel, next_untitled_id, review_of
from .settings import AppSettings, SettingsDialog, check_bundle
from .worker import TaggerService

TEXT_SUFFIXES = {".txt", ".md", ".text", ".note"}
DOC_SUFFIXES = {".jsonl", ".ndjson", ".xml", ".json", ".csv", ".pubtator", ".ann"}
OPEN_FILTER = ("Notes and documents (*.txt *.md *.text *.note *.jsonl *.ndjson *.xml *.json *.csv);;"
               "Text notes (*.txt *.md *.text *.note);;Tagged documents to review (*.jsonl *.ndjson);;"
               "BioC (*.xml *.json);;CSV (*.csv);;All files (*)")


class MainWindow(QMainWindow):
    def __init__(self, settings: AppSettings | None = None, interactive: bool = True,
                 autoload: bool = True):
        super().__init__()
        self.settings = settings or AppSettings()
        self.interactive = interactive        # False (tests): no modal dialogs; answers "yes"
        self._closing = False
        self.last_error = ""
        self.models: list[DocumentModel] = []
        self.current: DocumentModel | None = None
        self.jobs: dict[int, DocumentModel] = {}
        self.batch_job: int | None = None
        self.batch_dialog: BatchDialog | None = None
        self.selected_ids: list[int] = []
        self.hidden_types: set[str] = set()
        self.show_rejected = self.settings.show_rejected
        self.threshold = self.settings.threshold if self.settings.threshold is not None else 0.0
        self.loaded_bundle: str | None = None
        self.model_device = ""
        self.last_type = "Disease"
        self.colors = exporting.all_colors(())
        self.undo_group = QUndoGroup(self)
        self.service = TaggerService(self)
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(80)
        self._refresh_timer.timeout.connect(lambda: self._alive() and self.refresh())
        self._build_ui()
        self._build_actions()
        self._connect()
        self._restore_window()
        self.new_document()
        ensure_cjk_font()   # the shipped Noto Sans CJK when the system has no Chinese font
        if not has_cjk_font():
            self.statusBar().showMessage("No Chinese font found: reinstall biotag (its Noto Sans CJK "
                                         "package is missing) or install Noto Sans CJK.", 15000)
        if autoload:
            self.load_bundle(self.settings.bundle_dir, initial=True)
        else:
            self._show_banner("No model loaded. Choose a model bundle in Settings to tag text; "
                              "opening and reviewing tagged documents works without one.")
        self._update_actions()

    # ================================================================================ UI
    def _build_ui(self):
        self.setWindowTitle("biotag")
        self.setAcceptDrops(True)
        self.view = EntityView()
        self.view.setFont(text_font(self.settings.font_size))
        self.banner = QFrame()
        self.banner.setObjectName("banner")
        self.banner.setStyleSheet("#banner{background:#fff4ce;border:1px solid #e0c060;border-radius:4px}")
        self.banner_text = QLabel()
        self.banner_text.setWordWrap(True)
        self.banner_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner_button = QPushButton("Choose model bundle…")
        self.banner_button.clicked.connect(self.choose_bundle)
        bl = QHBoxLayout(self.banner)
        bl.setContentsMargins(8, 4, 8, 4)
        bl.addWidget(self.banner_text, 1)
        bl.addWidget(self.banner_button)
        self.banner.hide()
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.banner)
        ll.addWidget(self.view, 1)
        self.legend = Legend()
        self.table = EntityTable()
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        lt = QLabel("<b>Types</b> <span style='color:#666'>(untick to hide)</span>")
        rl.addWidget(lt)
        rl.addWidget(self.legend)
        rl.addWidget(QLabel("<b>Entities</b>"))
        rl.addWidget(self.table, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("main_splitter")
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setSizes([760, 520])
        self.setCentralWidget(self.splitter)
        # toolbar widgets
        self.doc_box = QComboBox()
        self.doc_box.setMinimumContentsLength(14)
        self.doc_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.doc_box.setToolTip("Open documents")
        self.lang_box = QComboBox()
        self.lang_box.addItem("Auto language", None)
        self.lang_box.addItem("English", "en")
        self.lang_box.addItem("中文 Chinese", "zh")
        self.lang_box.setToolTip("Language of the text (Auto: detected per sentence)")
        self.lang_box.setCurrentIndex(max(0, self.lang_box.findData(
            None if self.settings.lang == "auto" else self.settings.lang)))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 100)
        self.slider.setFixedWidth(150)
        self.slider.setValue(round(self.threshold * 100))
        self.slider.setToolTip("Minimum confidence: entities scoring below it are hidden (and not "
                               "exported). Changing it never re-runs the model.")
        self.slider_label = QLabel()
        self.slider_label.setMinimumWidth(64)
        self._update_slider_label()
        self.model_thr_box = QCheckBox("Model thresholds")
        self.model_thr_box.setChecked(DocumentModel.model_thresholds)
        self.model_thr_box.setToolTip("Also hide candidates below the model's own tuned threshold for their "
                                      "type and instruction (untick to see every candidate the LLM proposed)")
        self.model_thr_box.toggled.connect(self.set_model_thresholds)
        # status bar
        self.model_label = QLabel("No model")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFixedWidth(200)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.hide()
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.cancel_button)
        self.statusBar().addPermanentWidget(self.model_label)

    def _act(self, name, text, slot, shortcut=None, tip="", checkable=False) -> QAction:
        a = QAction(text, self)
        a.setObjectName(name)
        if shortcut:
            keys = shortcut if isinstance(shortcut, (list, tuple)) else [shortcut]
            a.setShortcuts([QKeySequence(k) for k in keys])
        if tip:
            a.setStatusTip(tip)
            a.setToolTip(f"{text.replace('&', '')} ({a.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})"
                         if a.shortcut() else text.replace("&", ""))
        a.setCheckable(checkable)
        a.triggered.connect(slot)
        self.addAction(a)
        self.actions_by_name[name] = a
        return a

    def _build_actions(self):
        self.actions_by_name: dict[str, QAction] = {}
        A = self._act
        K = QKeySequence.StandardKey
        f = [A("open", "&Open…", self.open_dialog, K.Open, "Open notes (.txt, .md) or tagged documents (.jsonl)"),
             A("paste_new", "&Paste as new document", self.paste_new, "Ctrl+Shift+V",
               "Start a new document from the clipboard text"),
             A("new", "&New document", self.new_document, K.New, "An empty document to type or paste into"),
             A("edit_text", "&Edit text", self.edit_text, "Ctrl+E",
               "Make the text editable again (drops its entities)"),
             A("close_doc", "&Close document", self.close_document, K.Close, "Close the current document"),
             A("export_html", "Export &HTML report…", lambda: self.export("html"), "Ctrl+Shift+H",
               "Self-contained HTML report of the open documents"),
             A("export_pdf", "Export P&DF report…", lambda: self.export("pdf"), "Ctrl+Shift+P",
               "PDF report with nested entity bars and the entity table")]
        data = []
        for k, (label, (fmt, _)) in enumerate(exporting.DATA_FORMATS.items()):
            data.append(A(f"export_{fmt}", f"Export {label}…", lambda _=False, fmt=fmt: self.export(fmt),
                          "Ctrl+Shift+S" if fmt == "jsonl" else None,
                          "The reviewed entities (threshold and type filter applied, rejected left out)"))
        batch = A("batch", "&Batch tag a folder…", self.batch_dialog_open, "Ctrl+B",
                  "Tag every note of a folder and write the results (resumable)")
        settings = A("settings", "&Settings…", self.settings_dialog, K.Preferences if not QKeySequence(K.Preferences).isEmpty() else "Ctrl+,",
                     "Model bundle, device, threads, user dictionary")
        quit_ = A("quit", "&Quit", self.close, "Ctrl+Q")
        self.recent_menu = QMenu("Open &recent", self)
        self.recent_menu.aboutToShow.connect(self._fill_recent)

        tag = A("tag", "&Tag document", self.tag_current, ["Ctrl+T", "Ctrl+Return"],
                "Find the entities of the current document")
        cancel = A("cancel", "&Cancel tagging", self.cancel, "Esc", "Stop tagging after the current sentence")
        tag_acts = [tag, cancel]

        rv = [A("accept", "&Accept", self.accept_selected, "A", "Mark the selected entities as correct"),
              A("reject", "&Reject", self.reject_selected, "R", "Mark the selected entities as wrong (left out of exports)"),
              A("clear_review", "Clear review &mark", self.clear_review_selected, "U",
                "Back to unreviewed (accepted/rejected only)"),
              A("change_type", "Change &type…", lambda: self.change_type(), "T", "Give the selected entities another type"),
              A("add", "A&dd entity from selection…", lambda: self.add_entity(), ["N", "Ins"],
                "Select text, then add it as an entity of a chosen type"),
              A("delete", "De&lete entity", self.delete_selected, [K.Delete, "Backspace"], "Remove the selected entities"),
              A("toggle_negated", "Toggle &negated", self.toggle_negated_selected, "X",
                "Mark the selected entities negated, or present again")]
        # assertion status of the selected entities (the tagger's rules set it; review corrects it)
        asr = [A(f"assert_{a}", a.capitalize(), lambda _=False, a=a: self.set_assertion_selected(a), None,
                 f"Mark the selected entities {a}") for a in ASSERTIONS]
        bd = [A("start_left", "Extend start left by a word", lambda: self.move_boundary("start", -1, "word"), "Alt+Left"),
              A("start_right", "Shrink start right by a word", lambda: self.move_boundary("start", 1, "word"), "Alt+Right"),
              A("end_left", "Shrink end left by a word", lambda: self.move_boundary("end", -1, "word"), "Alt+Shift+Left"),
              A("end_right", "Extend end right by a word", lambda: self.move_boundary("end", 1, "word"), "Alt+Shift+Right"),
              A("start_left_char", "Extend start left by a character", lambda: self.move_boundary("start", -1, "char"), "Ctrl+Alt+Left"),
              A("start_right_char", "Shrink start right by a character", lambda: self.move_boundary("start", 1, "char"), "Ctrl+Alt+Right"),
              A("end_left_char", "Shrink end left by a character", lambda: self.move_boundary("end", -1, "char"), "Ctrl+Alt+Shift+Left"),
              A("end_right_char", "Extend end right by a character", lambda: self.move_boundary("end", 1, "char"), "Ctrl+Alt+Shift+Right")]
        nav = [A("next", "&Next entity", lambda: self.step(1), "J", "Select the next entity"),
               A("prev", "&Previous entity", lambda: self.step(-1), "K", "Select the previous entity")]
        undo = self.undo_group.createUndoAction(self, "&Undo")
        undo.setShortcuts(QKeySequence.keyBindings(K.Undo))
        redo = self.undo_group.createRedoAction(self, "&Redo")
        redo.setShortcuts(QKeySequence.keyBindings(K.Redo) + [QKeySequence("Ctrl+Y")])
        for name, a in (("undo", undo), ("redo", redo)):
            a.setObjectName(name)
            self.addAction(a)
            self.actions_by_name[name] = a

        view = [A("show_rejected", "Show &rejected entities", self.toggle_rejected, "Ctrl+Shift+R",
                  "Show rejected entities struck out (they are never exported)", checkable=True),
                A("zoom_in", "Zoom &in", lambda: self.zoom(1), [K.ZoomIn, "Ctrl+="]),
                A("zoom_out", "Zoom &out", lambda: self.zoom(-1), K.ZoomOut),
                A("find", "&Filter entities", self.focus_filter, K.Find, "Type to filter the entity table"),
                A("focus_text", "Focus the &text", lambda: self.view.setFocus(), "F6")]
        self.actions_by_name["show_rejected"].setChecked(self.show_rejected)
        helps = [A("help", "&Keyboard shortcuts", self.help_dialog, K.HelpContents if not QKeySequence(K.HelpContents).isEmpty() else "F1"),
                 A("about", "&About biotag and the model", self.about_dialog)]

        mb = self.menuBar()
        m = mb.addMenu("&File")
        for a in f[:3]:
            m.addAction(a)
        m.addMenu(self.recent_menu)
        m.addSeparator()
        m.addAction(f[3])
        m.addAction(f[4])
        m.addSeparator()
        em = m.addMenu("E&xport")
        em.addAction(f[5])
        em.addAction(f[6])
        em.addSeparator()
        for a in data:
            em.addAction(a)
        m.addAction(batch)
        m.addSeparator()
        m.addAction(settings)
        m.addSeparator()
        m.addAction(quit_)
        m = mb.addMenu("&Edit")
        m.addAction(undo)
        m.addAction(redo)
        m.addSeparator()
        m.addAction(self.actions_by_name["find"])
        m = mb.addMenu("&Tag")
        for a in tag_acts:
            m.addAction(a)
        m.addSeparator()
        m.addAction(settings)
        m = mb.addMenu("&Review")
        for a in rv:
            m.addAction(a)
        bm = m.addMenu("&Boundaries")
        for a in bd:
            bm.addAction(a)
        self.boundary_menu = bm
        am = m.addMenu("A&ssertion")
        for a in asr:
            am.addAction(a)
        self.assertion_menu = am
        m.addSeparator()
        for a in nav:
            m.addAction(a)
        m = mb.addMenu("&View")
        for a in view:
            m.addAction(a)
        m = mb.addMenu("&Help")
        for a in helps:
            m.addAction(a)
        self.help_groups = [("File", f + data + [batch, settings, quit_]), ("Tagging", tag_acts),
                            ("Review", rv + [undo, redo]), ("Assertion", asr), ("Boundaries", bd),
                            ("Navigation", nav),
                            ("View", view), ("Help", helps)]

        tb = self.addToolBar("Main")
        tb.setObjectName("main_toolbar")
        tb.setMovable(False)
        tb.addAction(f[0])
        tb.addWidget(self.doc_box)
        tb.addSeparator()
        tb.addWidget(self.lang_box)
        tb.addAction(tag)
        tb.addAction(cancel)
        tb.addSeparator()
        tb.addWidget(QLabel(" Min score "))
        tb.addWidget(self.slider)
        tb.addWidget(self.slider_label)
        tb.addWidget(self.model_thr_box)
        tb.addSeparator()
        for n in ("accept", "reject", "change_type", "add", "delete"):
            tb.addAction(self.actions_by_name[n])
        tb.addAction(undo)
        tb.addAction(redo)
        tb.addSeparator()
        tb.addAction(f[5])
        tb.addAction(f[6])
        for n, short in (("open", "Open"), ("tag", "Tag"), ("cancel", "Cancel"), ("accept", "Accept"),
                         ("reject", "Reject"), ("change_type", "Type…"), ("add", "Add…"), ("delete", "Delete"),
                         ("undo", "Undo"), ("redo", "Redo"), ("export_html", "HTML"), ("export_pdf", "PDF")):
            a = self.actions_by_name[n]
            a.setIconText(short)
            keys = a.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            a.setToolTip(a.text().replace("&", "").replace("…", "") + (f" ({keys})" if keys else ""))
        self.cancel_button.setDefaultAction(cancel)
        self.cancel_button.setText("Cancel")

    def _connect(self):
        s = self.service
        s.loaded.connect(self._on_loaded)
        s.loadFailed.connect(self._on_load_failed)
        s.segmentTagged.connect(self._on_segment)
        s.documentTagged.connect(self._on_document)
        s.tagFinished.connect(self._on_tag_finished)
        s.batchProgress.connect(self._on_batch_progress)
        s.batchFinished.connect(self._on_batch_finished)
        s.busyChanged.connect(lambda _: self._update_actions())
        self.view.entityClicked.connect(self._on_view_clicked)
        self.view.contextRequested.connect(self._view_menu)
        self.view.textEdited.connect(self._on_text_edited)
        self.view.selectionChanged.connect(self._update_actions)
        self.table.selectionChangedIds.connect(self._on_table_selection)
        self.table.activated.connect(lambda eid: self.view.set_selected(eid, scroll=True))
        self.table.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.view.customContextMenuRequested.connect(
            lambda p: self._review_menu(self.table.view.viewport().mapToGlobal(p)))
        self.legend.toggled.connect(self._on_legend)
        self.slider.valueChanged.connect(lambda v: self.set_threshold(v / 100.0))
        self.doc_box.currentIndexChanged.connect(self._on_doc_box)
        self.lang_box.currentIndexChanged.connect(
            lambda _: setattr(self.settings, "lang", self.lang_box.currentData() or "auto"))
        self.undo_group.cleanChanged.connect(lambda clean: self._alive() and self.setWindowModified(not clean))

    # ================================================================ messages
    def error(self, msg: str, title: str = "biotag") -> None:
        self.last_error = msg
        self.statusBar().showMessage(msg, 15000)
        if self.interactive:
            QMessageBox.warning(self, title, msg)

    def confirm(self, msg: str, title: str = "biotag") -> bool:
        if not self.interactive:
            return True
        return QMessageBox.question(self, title, msg) == QMessageBox.StandardButton.Yes

    def info(self, msg: str, ms: int = 8000) -> None:
        self.statusBar().showMessage(msg, ms)

    def _show_banner(self, msg: str) -> None:
        self.banner_text.setText(msg)
        self.banner.show()

    # ================================================================ model bundle
    def load_bundle(self, path: str, initial: bool = False, device: str | None = None,
                    threads: int | None = None) -> bool:
        """Verify and load a bundle in the tagging thread. False when it is clearly unusable."""
        from biotag.runtime.tagger import default_bundle_dir

        path = str(path)
        msg = check_bundle(path)
        if msg:
            if initial and Path(path) == default_bundle_dir() and not Path(path).exists():
                self._show_banner(f"No model bundle at {path} yet. Choose a model bundle to tag "
                                  "text; opening and reviewing tagged documents (.jsonl) works without one.")
            else:
                self._show_banner(f"The model bundle cannot be used: {msg}")
                if not initial:
                    self.error(f"The model bundle cannot be used:\n{msg}")
            self.last_error = msg
            self._update_actions()
            return False
        self._pending_bundle = path
        self._pending_initial = initial
        self._show_banner(f"Loading the model from {path} (verifying its files)…")
        self.service.load(path, device or self.settings.device, self.settings.threads if threads is None else threads)
        self._update_actions()
        return True

    def _on_loaded(self, name, version, device):
        self.loaded_bundle = self._pending_bundle
        self.model_device = device
        if not self._pending_initial:
            self.settings.bundle_dir = self.loaded_bundle
        self.banner.hide()
        self.model_label.setText(f"Model: {name} {version} · {device.upper()}")
        self.model_label.setToolTip(self.loaded_bundle)
        if self.settings.threshold is None:
            self.slider.setValue(round(self._bundle_default_threshold() * 100))
        self.info(f"Model {name} {version} loaded ({device.upper()}).")
        self._update_actions()

    def _bundle_default_threshold(self) -> float:
        try:
            from biotag.runtime.bundle import Bundle

            sel = Bundle.open(self.loaded_bundle).manifest.get("selector") or {}
            return float(sel.get("default", 0.0)) if sel else 0.0
        except Exception:
            return 0.0

    def _on_load_failed(self, msg):
        still = f" Still using {self.service.model_name}." if self.service.has_model else ""
        self._show_banner(f"The model bundle cannot be used: {msg}{still}")
        if self.service.has_model:
            self.banner.show()
        self.error(f"The model bundle cannot be used:\n{msg}" if not self._pending_initial else msg)
        self._update_actions()

    def choose_bundle(self):
        d = QFileDialog.getExistingDirectory(self, "Choose a model bundle folder", self.settings.bundle_dir)
        if d:
            self.load_bundle(d)

    def settings_dialog(self):
        dlg = SettingsDialog(self.settings, self)
        if dlg.exec() != SettingsDialog.DialogCode.Accepted:
            return
        v = dlg.values()
        changed_model = (v["bundle"] != (self.loaded_bundle or "") or v["device"] != self.settings.device
                         or v["threads"] != self.settings.threads)
        self.settings.device = v["device"]
        self.settings.threads = v["threads"]
        self.settings.dictionary = v["dictionary"]
        self.settings.dictionary_mode = v["dictionary_mode"]
        if changed_model:
            if self.service.busy:
                self.error("Tagging is running: cancel it before changing the model.")
                return
            self.load_bundle(v["bundle"])

    # ================================================================ documents
    def _unique_id(self, doc_id: str) -> str:
        have = {m.id for m in self.models}
        if doc_id not in have:
            return doc_id
        k = 2
        while f"{doc_id}-{k}" in have:
            k += 1
        return f"{doc_id}-{k}"

    def add_model(self, m: DocumentModel, make_current: bool = True) -> DocumentModel:
        # an untouched empty draft is replaced
        if self.current is not None and not self.current.tagged and not self.current.text and len(self.models) == 1 \
                and self.current not in self.jobs.values():
            self._remove_model(self.current)
        m.id = self._unique_id(m.id)
        m.setParent(self)
        self.models.append(m)
        self.undo_group.addStack(m.undo_stack)
        m.changed.connect(lambda m=m: self._on_model_changed(m))
        m.undo_stack.cleanChanged.connect(lambda *_: self._update_doc_box())
        self.doc_box.blockSignals(True)
        self.doc_box.addItem(m.id)
        self.doc_box.blockSignals(False)
        if make_current:
            self.set_current(m)
        self._update_doc_box()
        return m

    def _remove_model(self, m: DocumentModel):
        k = self.models.index(m)
        self.models.pop(k)
        m.changed.disconnect()
        m.undo_stack.cleanChanged.disconnect()
        self.undo_group.removeStack(m.undo_stack)
        m.deleteLater()
        self.doc_box.blockSignals(True)
        self.doc_box.removeItem(k)
        self.doc_box.blockSignals(False)
        if self.current is m:
            self.current = None

    def _alive(self) -> bool:
        """False while Qt tears the window down (children may already be gone)."""
        return not self._closing and shiboken6.isValid(self) and shiboken6.isValid(self.doc_box)

    def _update_doc_box(self):
        if not self._alive() or not all(shiboken6.isValid(m.undo_stack) for m in self.models):
            return
        for k, m in enumerate(self.models):
            label = m.id + (" *" if not m.undo_stack.isClean() else "") + (" (tagging…)" if m in self.jobs.values() else "")
            self.doc_box.setItemText(k, label)
        self.doc_box.setVisible(True)

    def set_current(self, m: DocumentModel):
        self.current = m
        self.selected_ids = []
        self.undo_group.setActiveStack(m.undo_stack)
        self.view.set_text(m.text, editable=not m.tagged and m not in self.jobs.values())
        k = self.models.index(m)
        if self.doc_box.currentIndex() != k:
            self.doc_box.blockSignals(True)
            self.doc_box.setCurrentIndex(k)
            self.doc_box.blockSignals(False)
        self.setWindowTitle(f"biotag — {m.id}[*]")
        self.setWindowModified(not m.undo_stack.isClean())
        self.refresh()

    def _on_doc_box(self, k: int):
        if 0 <= k < len(self.models):
            self.set_current(self.models[k])

    def new_document(self, text: str = "", doc_id: str | None = None) -> DocumentModel:
        m = DocumentModel(Document(doc_id or next_untitled_id(), text), tagged=False)
        self.add_model(m)
        self.view.setFocus()
        return m

    def paste_new(self):
        text = QApplication.clipboard().text()
        if not text.strip():
            self.info("The clipboard holds no text.")
            return None
        return self.new_document(text, next_untitled_id("pasted"))

    def edit_text(self):
        m = self.current
        if m is None or not m.tagged:
            return
        if m in self.jobs.values():
            self.error("Cancel tagging before editing the text.")
            return
        if m.has_reviews() and not self.confirm(
                "Editing the text removes its entities and your review edits. Continue?"):
            return
        m.tagged = False
        m.set_text(m.text)
        self.view.set_text(m.text, editable=True)
        self.refresh()
        self.view.setFocus()

    def close_document(self):
        m = self.current
        if m is None:
            return
        if not m.undo_stack.isClean() and not self.confirm(f"Close {m.id} and lose its unexported review edits?"):
            return
        for job in [j for j, mm in self.jobs.items() if mm is m]:
            self.service.cancel(job)
            self.jobs.pop(job)
        k = self.models.index(m)
        self._remove_model(m)
        if self.models:
            self.set_current(self.models[min(k, len(self.models) - 1)])
        else:
            self.new_document()

    def _on_text_edited(self):
        m = self.current
        if m is not None and not m.tagged:
            m.text = self.view.draft_text()
            m._words = None
            self._update_actions()

    def open_dialog(self):
        paths, _ = QFileDialog.getOpenFileNames(self, "Open notes or documents", self.settings.last_dir, OPEN_FILTER)
        if paths:
            self.open_paths(paths)

    def open_paths(self, paths) -> list[DocumentModel]:
        opened = []
        for p in paths:
            try:
                opened.extend(self.open_path(p))
            except BiotagError as exc:
                self.error(str(exc), "Cannot open")
        if opened:
            self.settings.last_dir = str(Path(paths[-1]).resolve().parent)
        return opened

    def open_path(self, path) -> list[DocumentModel]:
        from biotag.runtime.formats import read_documents
        from biotag.runtime.textio import read_text

        p = Path(path)
        suffix = p.suffix.lower()
        out = []
        if p.is_dir() or suffix in DOC_SUFFIXES:
            docs = read_documents(p)
            if not docs:
                raise BiotagError(f"{p}: no documents in the file")
            for d in docs:
                out.append(self.add_model(DocumentModel(d, str(p), tagged=True), make_current=False))
        else:
            try:
                text = read_text(p, allow_empty=True)
            except BiotagError as exc:
                if "not valid" in str(exc) and self.confirm(f"{exc}\n\nOpen it anyway, replacing undecodable bytes?"):
                    text = read_text(p, errors="replace", allow_empty=True)
                else:
                    raise
            out.append(self.add_model(DocumentModel(Document(p.stem, text), str(p), tagged=False),
                                      make_current=False))
        self.set_current(out[0])
        self.settings.add_recent(str(p))
        self.info(f"Opened {p.name}: {len(out)} document(s)." if len(out) > 1 else f"Opened {p.name}.")
        return out

    def _fill_recent(self):
        self.recent_menu.clear()
        files = self.settings.recent_files
        for k, f in enumerate(files):
            a = self.recent_menu.addAction(f"&{k + 1} {Path(f).name}" if k < 9 else Path(f).name)
            a.setToolTip(f)
            a.triggered.connect(lambda _=False, f=f: self.open_paths([f]))
        if not files:
            self.recent_menu.addAction("(none)").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list", self.settings.clear_recent)

    def dragEnterEvent(self, e):
        if e.mimeData().hasUrls():
            e.acceptProposedAction()

    def dropEvent(self, e):
        paths = [u.toLocalFile() for u in e.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.open_paths(paths)

    # ================================================================ tagging
    def tag_options(self, threshold: float | None = 0.0):
        """Options for the tagger: keep every candidate (threshold 0) so the slider can filter
        later without re-running the model."""
        from biotag.runtime.dictionary import UserDictionary
        from biotag.runtime.tagger import TagOptions

        dictionary = None
        if self.settings.dictionary:
            dictionary = UserDictionary.load(self.settings.dictionary)
        return TagOptions(threshold=threshold, dictionary=dictionary,
                          dictionary_mode=self.settings.dictionary_mode)

    def tag_current(self) -> int | None:
        m = self.current
        if m is None:
            return None
        if not self.service.has_model:
            self.error("No model is loaded: choose a model bundle (Settings) first.")
            return None
        if m in self.jobs.values():
            return None
        if not m.tagged:
            m.text = self.view.draft_text() if not self.view.isReadOnly() else m.text
        if not m.text.strip():
            self.info("Nothing to tag: paste or type a note first.")
            return None
        if m.has_reviews() and not self.confirm("Tagging again replaces the entities and your review edits. Continue?"):
            return None
        try:
            opts = self.tag_options()
        except BiotagError as exc:
            self.error(f"The user dictionary cannot be used: {exc}")
            return None
        m.tagged = True
        m.clear_entities()
        self.view.set_text(m.text, editable=False)
        lang = self.lang_box.currentData()
        job = self.service.tag(m.text, lang, opts)
        self.jobs[job] = m
        self.progress.setValue(0)
        self.progress.setFormat("Tagging %p%")
        self.progress.show()
        self.cancel_button.show()
        self.info("Tagging… results appear sentence by sentence; Esc cancels.", 0)
        self._update_doc_box()
        self._update_actions()
        return job

    def _on_segment(self, job, start, end, ents, total):
        m = self.jobs.get(job)
        if m is None:
            return
        m.segments.append(Segment(start, end))
        m.blockSignals(True)      # many segments a second: redraw at most every 80 ms
        try:
            m.add_model_entities(ents)
        finally:
            m.blockSignals(False)
        if m is self.current:
            self.progress.setValue(int(1000 * end / max(1, total)))
            if not self._refresh_timer.isActive():
                self._refresh_timer.start()

    def _on_document(self, job, doc):
        """The pipeline's assembled Document: its language and meta (bundle, assertion rules)."""
        m = self.jobs.get(job)
        if m is None:
            return
        if m.lang is None:
            m.lang = doc.lang
        m.meta.update(doc.meta)

    def _on_tag_finished(self, job, status, msg):
        m = self.jobs.pop(job, None)
        if not self.jobs and self.batch_job is None:
            self.progress.hide()
            self.cancel_button.hide()
        if m is None:
            return
        self._refresh_timer.stop()
        m.partial = status == "cancelled"
        shown = len(m.visible(self.threshold, self.hidden_types, False))
        if status == "done":
            self.info(f"Tagged {m.id}: {len(m)} candidate entities, {shown} at score ≥ {self.threshold:.2f}.")
        elif status == "cancelled":
            done = m.segments[-1].end if m.segments else 0
            self.info(f"Tagging cancelled after {len(m.segments)} sentence(s) "
                      f"({100 * done // max(1, len(m.text))}% of {m.id}); the entities found so far are kept.")
        else:
            self.error(f"Tagging failed: {msg}")
        self._update_doc_box()
        self.refresh()

    def cancel(self):
        if self.service.busy:
            self.service.cancel()
            self.info("Cancelling after the current sentence…", 0)

    # ================================================================ batch
    def batch_dialog_open(self):
        if self.batch_dialog is None:
            self.batch_dialog = BatchDialog(self.settings, self.threshold, self.lang_box.currentData(), self)
            self.batch_dialog.startRequested.connect(self.start_batch)
            self.batch_dialog.cancelRequested.connect(
                lambda: self.batch_job is not None and self.service.cancel(self.batch_job))
        self.batch_dialog.threshold.setValue(self.threshold)
        self.batch_dialog.show()
        self.batch_dialog.raise_()
        return self.batch_dialog

    def start_batch(self, spec) -> int | None:
        if not self.service.has_model:
            self.error("No model is loaded: choose a model bundle (Settings) first.")
            if self.batch_dialog:
                self.batch_dialog.set_running(False)
            return None
        try:
            thr = self.batch_dialog.threshold.value() if self.batch_dialog else self.threshold
            spec.opts = self.tag_options(threshold=thr)
        except BiotagError as exc:
            self.error(f"The user dictionary cannot be used: {exc}")
            return None
        self.batch_job = self.service.batch(spec)
        self.progress.setValue(0)
        self.progress.setFormat("Batch %p%")
        self.progress.show()
        self.cancel_button.show()
        return self.batch_job

    def _on_batch_progress(self, job, done, total, doc_id):
        if self.batch_dialog:
            self.batch_dialog.on_progress(done, total, doc_id)
        self.progress.setValue(int(1000 * done / max(1, total)))

    def _on_batch_finished(self, job, res):
        self.batch_job = None
        if not self.jobs:
            self.progress.hide()
            self.cancel_button.hide()
        if self.batch_dialog:
            self.batch_dialog.on_finished(res)
        self.last_batch = res
        self.info(f"Batch: {len(res.done)} tagged, {len(res.skipped)} already done, {len(res.failed)} failed"
                  + (" (cancelled)" if res.cancelled else "") + ".")

    # ================================================================ view state
    def visible_items(self):
        m = self.current
        if m is None:
            return []
        return m.visible(self.threshold, self.hidden_types, self.show_rejected)

    def _on_model_changed(self, m):
        if m is self.current and self._alive():
            self.refresh()

    def refresh(self):
        m = self.current
        items = self.visible_items()
        self.colors = exporting.all_colors({e.type for mm in self.models for e in mm.entities()})
        self.selected_ids = [i for i in self.selected_ids if any(i == j for j, _ in items)]
        primary = self.selected_ids[0] if self.selected_ids else None
        self.view.set_entities(items, self.colors, primary)
        self.table.set_items(items, self.colors, self.selected_ids)
        counts: dict[str, int] = {}
        if m is not None:
            for _, e in m.visible(self.threshold, (), self.show_rejected):
                counts[e.type] = counts.get(e.type, 0) + 1
            for t in self.hidden_types:
                counts.setdefault(t, 0)
        self.legend.set_types(counts, self.colors, self.hidden_types)
        self._update_actions()

    def set_threshold(self, t: float):
        self.threshold = round(min(1.0, max(0.0, t)), 2)
        if round(self.slider.value()) != round(self.threshold * 100):
            self.slider.blockSignals(True)
            self.slider.setValue(round(self.threshold * 100))
            self.slider.blockSignals(False)
        self.settings.threshold = self.threshold
        self._update_slider_label()
        self.refresh()

    def set_model_thresholds(self, on: bool):
        DocumentModel.model_thresholds = bool(on)
        if self.model_thr_box.isChecked() != bool(on):
            self.model_thr_box.setChecked(bool(on))
        self.refresh()

    def _update_slider_label(self):
        self.slider_label.setText(f"≥ {self.threshold:.2f}")

    def _on_legend(self, typ: str, shown: bool):
        if shown:
            self.hidden_types.discard(typ)
        else:
            self.hidden_types.add(typ)
        self.refresh()

    def set_type_visible(self, typ: str, shown: bool):
        self._on_legend(typ, shown)

    def toggle_rejected(self):
        self.show_rejected = self.actions_by_name["show_rejected"].isChecked()
        self.settings.show_rejected = self.show_rejected
        self.refresh()

    def zoom(self, step: int):
        size = min(40, max(7, self.settings.font_size + step))
        self.settings.font_size = size
        self.view.setFont(text_font(size))
        self.refresh()

    def focus_filter(self):
        self.table.search.setFocus()
        self.table.search.selectAll()

    def _update_actions(self):
        m = self.current
        busy_doc = m is not None and m in self.jobs.values()
        has_sel = bool(self.selected_ids)
        ro = m is not None and m.tagged
        en = self.actions_by_name
        en["tag"].setEnabled(self.service.has_model and m is not None and not busy_doc and bool(m.text.strip()))
        en["cancel"].setEnabled(self.service.busy)
        for n in ("accept", "reject", "clear_review", "change_type", "delete", "start_left", "start_right",
                  "end_left", "end_right", "start_left_char", "start_right_char", "end_left_char", "end_right_char",
                  "toggle_negated", *(f"assert_{a}" for a in ASSERTIONS)):
            en[n].setEnabled(has_sel and ro)
        en["add"].setEnabled(ro and self.view.textCursor().hasSelection())
        en["edit_text"].setEnabled(ro and not busy_doc)
        en["batch"].setEnabled(True)

    # ================================================================ selection
    def _on_view_clicked(self, eid: int):
        self.selected_ids = [] if eid < 0 else [eid]
        self.table.select_ids(self.selected_ids)
        self._update_actions()

    def _on_table_selection(self, ids):
        self.selected_ids = list(ids)
        self.view.set_selected(ids[0] if ids else None, scroll=bool(ids))
        self._update_actions()

    def select(self, ids) -> None:
        """Select entities by id (view, table and actions follow)."""
        ids = [i for i in ids if i is not None]
        self.selected_ids = ids
        self.view.set_selected(ids[0] if ids else None)
        self.table.select_ids(ids)
        self._update_actions()

    def step(self, direction: int):
        order = [i for i, _ in self.visible_items()]
        if not order:
            return
        cur = self.selected_ids[0] if self.selected_ids else None
        if cur in order:
            k = (order.index(cur) + direction) % len(order)
        else:
            k = 0 if direction > 0 else len(order) - 1
        self.select([order[k]])

    # ================================================================ review
    def _targets(self) -> list[int]:
        m = self.current
        if m is None or not m.tagged:
            return []
        return [i for i in self.selected_ids if m.entity(i) is not None]

    def accept_selected(self):
        if self._targets():
            self.current.accept(self._targets())

    def reject_selected(self):
        if self._targets():
            self.current.reject(self._targets())

    def clear_review_selected(self):
        if self._targets():
            self.current.clear_review(self._targets())

    def set_assertion_selected(self, assertion: str):
        if self._targets():
            self.current.set_assertion(self._targets(), assertion)

    def toggle_negated_selected(self):
        ids = self._targets()
        if ids:
            neg = self.current.entity(ids[0]).assertion != "negated"
            self.current.set_assertion(ids, "negated" if neg else "present")

    def delete_selected(self):
        ids = self._targets()
        if ids:
            order = [i for i, _ in self.visible_items()]
            after = [i for i in order if i not in ids and order.index(i) > order.index(ids[0])] if ids[0] in order else []
            self.current.delete(ids)
            self.select(after[:1])

    def all_types(self) -> list[str]:
        extra = sorted({e.type for m in self.models for e in m.entities()} - set(TYPE_ORDER))
        return list(TYPE_ORDER) + extra

    def _type_menu(self, title: str, current: str | None = None) -> QMenu:
        menu = QMenu(title, self)
        types = self.all_types()
        first = [self.last_type] if self.last_type in types else []
        for t in first + [t for t in types if t not in first]:
            a = menu.addAction(swatch(self.colors.get(t, "#999999")), t)
            a.setData(t)
            a.setToolTip(CANONICAL_TYPES.get(t, ""))
            if t == current:
                a.setCheckable(True)
                a.setChecked(True)
            if t in first and len(types) > 1 and t == first[0]:
                menu.addSeparator()
        menu.addSeparator()
        other = menu.addAction("Other type…")
        other.setData("__other__")
        return menu

    def _ask_type(self, title: str, current: str | None = None, at: QPoint | None = None) -> str | None:
        if not self.interactive:
            return None
        menu = self._type_menu(title, current)
        if at is None:
            ids = self._targets()
            at = self.view.viewport().mapToGlobal(self.view.point_of(ids[0])) if ids else \
                self.view.viewport().mapToGlobal(self.view.cursorRect().bottomLeft())
        a = menu.exec(at)
        if a is None:
            return None
        t = a.data()
        if t == "__other__":
            t, ok = QInputDialog.getText(self, "Entity type", "Type name:")
            if not ok or not t.strip():
                return None
        return t.strip()

    def change_type(self, typ: str | None = None):
        ids = self._targets()
        if not ids:
            return
        if typ is None:
            typ = self._ask_type("Change type to", self.current.entity(ids[0]).type)
            if not typ:
                return
        self.last_type = typ
        self.current.set_type(ids, typ)

    def add_entity(self, typ: str | None = None, span: tuple[int, int] | None = None) -> int | None:
        m = self.current
        if m is None or not m.tagged:
            self.info("Tag the document (Ctrl+T) before adding entities.")
            return None
        span = span or self.view.selected_span()
        if span is None:
            self.info("Select the text of the new entity first.")
            return None
        if typ is None:
            typ = self._ask_type("Add entity as")
            if not typ:
                return None
        self.last_type = typ
        eid = m.add(span[0], span[1], typ)
        if eid is None:
            self.info("The selection holds only spaces.")
            return None
        c = self.view.textCursor()
        c.clearSelection()
        self.view.setTextCursor(c)
        self.select([eid])
        return eid

    def move_boundary(self, side: str, direction: int, unit: str):
        ids = self._targets()
        if not ids:
            return
        if not self.current.move_boundary(ids[0], side, direction, unit):
            self.info("That boundary cannot move further.")
        else:
            self.select([ids[0]])

    def _review_menu(self, at: QPoint, ids: list[int] | None = None):
        m = self.current
        menu = QMenu(self)
        if self.view.textCursor().hasSelection() and m is not None and m.tagged:
            sub = self._type_menu("Add selection as")
            menu.addMenu(sub)
            sub.triggered.connect(lambda a: self._add_from_menu(a))
        if ids:
            if len(ids) > 1:
                pick = menu.addMenu("Select")
                for i in ids:
                    e = m.entity(i)
                    a = pick.addAction(swatch(self.colors.get(e.type, "#999999")), f"{e.type}: “{e.text[:40]}”")
                    a.triggered.connect(lambda _=False, i=i: self.select([i]))
        if self._targets():
            e = m.entity(self._targets()[0])
            head = menu.addAction(f"{e.type}: “{e.text[:40]}”" + (f" ({review_of(e)})" if review_of(e) else ""))
            head.setEnabled(False)
            for n in ("accept", "reject", "clear_review", "change_type", "delete"):
                menu.addAction(self.actions_by_name[n])
            menu.addMenu(self.assertion_menu)
            menu.addMenu(self.boundary_menu)
        if not menu.isEmpty():
            menu.exec(at)

    def _add_from_menu(self, a):
        t = a.data()
        if t == "__other__":
            t, ok = QInputDialog.getText(self, "Entity type", "Type name:")
            if not ok:
                return
        self.add_entity(t)

    def _view_menu(self, ids, at):
        if ids and (not self.selected_ids or self.selected_ids[0] not in ids):
            self.select([ids[0]])
        self._review_menu(at, ids)

    # ================================================================ export
    def export_documents(self) -> list[Document]:
        return [m.to_document(self.threshold, self.hidden_types) for m in self.models
                if m.text.strip() and m.tagged]

    def export(self, kind: str, path: str | None = None) -> str | None:
        docs = self.export_documents()
        if not docs:
            self.error("Nothing to export: tag a document or open tagged documents first.")
            return None
        if path is None:
            if not self.interactive:
                return None
            base = Path(self.settings.last_dir) / (docs[0].id if len(docs) == 1 else "biotag-results")
            if kind == "brat":
                path = QFileDialog.getExistingDirectory(self, "Folder for the BRAT files", self.settings.last_dir)
            else:
                filt = {"html": "HTML report (*.html)", "pdf": "PDF (*.pdf)",
                        **{f: flt for f, flt in exporting.DATA_FORMATS.values() if flt}}[kind]
                ext = {"html": ".html", "pdf": ".pdf", "jsonl": ".jsonl", "bioc-xml": ".xml",
                       "bioc-json": ".json", "csv": ".csv"}[kind]
                path, _ = QFileDialog.getSaveFileName(self, "Export", str(base) + ext, filt)
            if not path:
                return None
        title = docs[0].id if len(docs) == 1 else "biotag report"
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            if kind == "html":
                exporting.write_html(docs, path, self.service.model_name, title)
            elif kind == "pdf":
                exporting.write_pdf(docs, path, self.service.model_name, title,
                                    self.view.font().families(), 10.5)
            else:
                exporting.write_data(docs, path, kind)
        except (BiotagError, OSError) as exc:
            self.error(f"Export failed: {exc}")
            return None
        finally:
            QApplication.restoreOverrideCursor()
        if kind == "jsonl":
            for m in self.models:
                m.undo_stack.setClean()
        self.settings.last_dir = str(Path(path).resolve().parent if kind != "brat" else Path(path).resolve())
        n = sum(len(d.entities) for d in docs)
        self.info(f"Exported {len(docs)} document(s), {n} entities, to {path}.")
        return str(path)

    # ================================================================ dialogs
    def help_dialog(self):
        dlg = HelpDialog(self.help_groups, self)
        if self.interactive:
            dlg.exec()
        return dlg

    def about_dialog(self):
        dlg = AboutDialog(self.loaded_bundle or self.settings.bundle_dir, self.service.model_name, self)
        if self.interactive:
            dlg.exec()
        return dlg

    # ================================================================ window state
    def _restore_window(self):
        g = self.settings.geometry()
        if g:
            self.restoreGeometry(QByteArray(g))
        else:
            self.resize(1280, 780)
        st = self.settings.window_state()
        if st:
            self.restoreState(QByteArray(st))
        sp = self.settings.splitter_state("main")
        if sp:
            self.splitter.restoreState(QByteArray(sp))

    def save_window(self):
        self.settings.save_window(self.saveGeometry(), self.saveState(), {"main": self.splitter.saveState()})
        self.settings.sync()

    def closeEvent(self, event):
        dirty = [m.id for m in self.models if not m.undo_stack.isClean()]
        if dirty and not self.confirm("These documents have review edits that were not exported as JSONL:\n"
                                      + ", ".join(dirty[:10]) + "\n\nQuit anyway?"):
            event.ignore()
            return
        self._closing = True
        self.save_window()
        if self.batch_dialog:
            self.batch_dialog.close()
        self.service.shutdown()
        for m in list(self.models):
            m.changed.disconnect()
            m.undo_stack.cleanChanged.disconnect()
        super().closeEvent(event)
