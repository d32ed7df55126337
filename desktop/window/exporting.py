"""Export of the reviewed documents and the help/about dialogs.

A part of :class:`biotag.desktop.main_window.MainWindow` (which holds the state it uses)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QFileDialog

from biotag.runtime.document import Document
from biotag.runtime.errors import BiotagError

from .. import export as exporting
from ..dialogs import AboutDialog, HelpDialog


class ExportPart:
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
