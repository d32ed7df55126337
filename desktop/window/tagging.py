"""The tagging controller: tag the current document through the tagger service (live, segment by
segment) and run folder batches.

A part of :class:`biotag.desktop.main_window.MainWindow` (which holds the state it uses)."""
from __future__ import annotations

from biotag.runtime.document import Segment
from biotag.runtime.errors import BiotagError

from ..dialogs import BatchDialog


class TaggingPart:
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
