"""The model bundle and the document list: load a bundle, open, paste, edit, close documents.

A part of :class:`biotag.desktop.main_window.MainWindow` (which holds the state it uses)."""
from __future__ import annotations

from pathlib import Path

import shiboken6

from PySide6.QtWidgets import QApplication, QFileDialog

from biotag.runtime.document import Document
from biotag.runtime.errors import BiotagError

from ..review import DocumentModel, next_untitled_id
from ..settings import SettingsDialog, check_bundle

TEXT_SUFFIXES = {".txt", ".md", ".text", ".note"}
DOC_SUFFIXES = {".jsonl", ".ndjson", ".xml", ".json", ".csv", ".pubtator", ".ann"}
OPEN_FILTER = ("Notes and documents (*.txt *.md *.text *.note *.jsonl *.ndjson *.xml *.json *.csv);;"
               "Text notes (*.txt *.md *.text *.note);;Tagged documents to review (*.jsonl *.ndjson);;"
               "BioC (*.xml *.json);;CSV (*.csv);;All files (*)")


class DocumentsPart:
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
        self._pending_one_pass = self.settings.one_pass
        self._show_banner(f"Loading the model from {path} (verifying its files)…")
        self.service.load(path, device or self.settings.device, self.settings.threads if threads is None else threads,
                          self.settings.one_pass)
        self._update_actions()
        return True

    def _on_loaded(self, name, version, device):
        self.loaded_bundle = self._pending_bundle
        self.model_device = device
        if not self._pending_initial:
            self.settings.bundle_dir = self.loaded_bundle
        self.banner.hide()
        one_pass = " · one pass" if getattr(self, "_pending_one_pass", False) else ""
        self.model_label.setText(f"Model: {name} {version} · {device.upper()}{one_pass}")
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
                         or v["threads"] != self.settings.threads or v["one_pass"] != self.settings.one_pass)
        self.settings.device = v["device"]
        self.settings.threads = v["threads"]
        self.settings.one_pass = v["one_pass"]
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
            m.edit_draft(self.view.draft_text())
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
