"""The main window: open or paste a note, tag it off the GUI thread, review entities, export.

Layout: a banner (model status), the text with nested entity bars on the left; the legend (type
toggles) and the entity table on the right; a toolbar with the document, language and confidence
controls; progress and cancel in the status bar.

The window holds the state (documents, jobs, selection, threshold); its behaviour is in parts, one
file each under desktop/window/: actions (widgets, actions, menus), documents (bundle and document
list), tagging (the tagging controller and batches), reviewing (what is shown, selection, review
edits) and exporting.
"""
from __future__ import annotations

from PySide6.QtCore import QByteArray, QTimer
from PySide6.QtGui import QUndoGroup
from PySide6.QtWidgets import QMainWindow, QMessageBox

from . import export as exporting
from .dialogs import BatchDialog
from .fonts import ensure_cjk_font, has_cjk_font
from .review import DocumentModel
from .settings import AppSettings
from .window.actions import ActionsPart
from .window.documents import DOC_SUFFIXES, OPEN_FILTER, TEXT_SUFFIXES, DocumentsPart  # noqa: F401
from .window.exporting import ExportPart
from .window.reviewing import ReviewPart
from .window.tagging import TaggingPart
from .worker import TaggerService


class MainWindow(ActionsPart, DocumentsPart, TaggingPart, ReviewPart, ExportPart, QMainWindow):
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
