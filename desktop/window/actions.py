"""The window's widgets, actions, menus and signal connections.

A part of :class:`biotag.desktop.main_window.MainWindow` (which holds the state it uses)."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFrame, QHBoxLayout, QLabel, QMenu, QProgressBar,
                               QPushButton, QSlider, QSplitter, QToolButton, QVBoxLayout, QWidget)

from biotag.runtime.document import ASSERTIONS

from .. import export as exporting
from ..entity_table import EntityTable, Legend
from ..entity_view import EntityView
from ..fonts import text_font
from ..review import DocumentModel


def _fill_menu(menu, items, submenus: dict) -> None:
    """Fill a menu from a list: an action, a ready menu (QMenu), None for a separator, or
    (title, items) for a submenu, which is also recorded in ``submenus`` by title."""
    for item in items:
        if item is None:
            menu.addSeparator()
        elif isinstance(item, QMenu):
            menu.addMenu(item)
        elif isinstance(item, tuple):
            sub = submenus[item[0]] = menu.addMenu(item[0])
            _fill_menu(sub, item[1], submenus)
        else:
            menu.addAction(item)


class ActionsPart:
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

        sep = None
        file_menu = [*f[:3], self.recent_menu, sep, f[3], f[4], sep,
                     ("E&xport", [f[5], f[6], sep, *data]), batch, sep, settings, sep, quit_]
        review_menu = [*rv, ("&Boundaries", bd), ("A&ssertion", asr), sep, *nav]
        menus = [("&File", file_menu), ("&Edit", [undo, redo, sep, self.actions_by_name["find"]]),
                 ("&Tag", [*tag_acts, sep, settings]), ("&Review", review_menu),
                 ("&View", view), ("&Help", helps)]
        submenus = {}
        for title, items in menus:
            _fill_menu(self.menuBar().addMenu(title), items, submenus)
        self.boundary_menu, self.assertion_menu = submenus["&Boundaries"], submenus["A&ssertion"]
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
