"""Tagging off the GUI thread.

One QThread owns the Tagger (a llama.cpp model is not thread-safe, so every job runs on that one
thread, in order). The GUI talks to it through ``TaggerService``: ``load``, ``tag`` (results
stream back segment by segment from the tagging pipeline, runtime.pipeline), ``batch`` (a folder, resumable,
like ``biotag tag --out``) and ``cancel`` (takes effect at the next segment). Nothing here logs or
reports document text.
"""
from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot

from biotag.runtime.batch import BatchJob, BatchResult, output_path, short_error as _short_error
from biotag.runtime.document import Document
from biotag.runtime.errors import BiotagError


@dataclass
class BatchSpec:
    input_dir: str
    output_dir: str
    fmt: str = "jsonl"              # jsonl, brat, bioc-xml, bioc-json, csv
    html: bool = True               # also a self-contained HTML report per document
    lang: str | None = None
    opts: object = None             # TagOptions
    encoding: str = "utf-8"


def batch_output_path(out_dir: Path, doc_id: str, fmt: str) -> Path:
    """Where a batch writes a document's primary output (existence = done: resumable); the same
    name as ``biotag tag --out`` gives it (brat: the ``.ann`` its writer names)."""
    return output_path(out_dir, doc_id, fmt)


def log_exception(exc: BaseException) -> None:
    """Where an unexpected error happened, for a bug report: exception type and code locations
    only. The message is not printed: it could quote document text."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames))
    sys.stderr.write(f"biotag desktop: {type(exc).__name__} at {where}\n")


class _Worker(QObject):
    loaded = Signal(str, str, str)             # name, version, device
    loadFailed = Signal(str)
    segmentTagged = Signal(int, int, int, object, int)   # job, seg start, seg end, entities, total
    documentTagged = Signal(int, object)       # job, the assembled Document (before tagFinished)
    tagFinished = Signal(int, str, str)        # job, status ("done"|"cancelled"|"failed"), message
    batchProgress = Signal(int, int, int, str)  # job, done, total, doc id
    batchFinished = Signal(int, object)        # job, BatchResult

    def __init__(self, service: "TaggerService"):
        super().__init__()
        self.service = service
        self.tagger = None

    def _cancelled(self, job: int) -> bool:
        return job < self.service._cancel_below or job in self.service._cancelled

    @Slot(str, str, int, bool)
    def load(self, bundle: str, device: str, threads: int, one_pass: bool = False):
        from biotag.runtime.tagger import Tagger

        try:
            tagger = Tagger.load(bundle, device=device, threads=threads or None, one_pass=one_pass)
        except BiotagError as exc:
            self.loadFailed.emit(str(exc))
            return
        except Exception as exc:  # llama.cpp refusing a file, etc.
            log_exception(exc)
            self.loadFailed.emit(f"{bundle}: cannot load the model ({type(exc).__name__}: {exc})")
            return
        self.tagger = tagger
        self.loaded.emit(tagger.name, tagger.version, tagger.device)

    @Slot(int, str, object, object)
    def tag(self, job: int, text: str, lang, opts):
        """Tag one text through the pipeline, segment by segment (``segmentTagged`` for live
        highlighting), then the assembled Document (``documentTagged``; a cancelled job's holds the
        segments done), then ``tagFinished``."""
        if self.tagger is None:
            self.tagFinished.emit(job, "failed", "no model is loaded")
            return
        if self._cancelled(job):
            self.tagFinished.emit(job, "cancelled", "")
            return
        pipe = self.tagger.pipeline
        doc = pipe.assembly(text, "doc", lang, opts)
        status = "done"
        try:
            for seg, ents in pipe.iter_segments(text, lang, opts):
                doc.add(seg, ents)
                self.segmentTagged.emit(job, seg.start, seg.end, list(ents), len(text))
                if self._cancelled(job):
                    status = "cancelled"
                    break
        except Exception as exc:
            log_exception(exc)
            self.tagFinished.emit(job, "failed", _short_error(exc))
            return
        self.documentTagged.emit(job, doc.document())
        self.tagFinished.emit(job, status, "")

    def _tag_doc(self, job: int, doc_id: str, text: str, lang, opts) -> Document | None:
        """Tag one batch document through the pipeline (None when cancelled part-way)."""
        return self.tagger.pipeline.tag(text, lang, doc_id, opts, cancelled=lambda: self._cancelled(job))

    @Slot(int, object)
    def batch(self, job: int, spec: BatchSpec):
        """A folder through the shared batch job (runtime.batch): finished outputs are skipped,
        each result is written atomically, failures are reported by document."""
        try:
            if self.tagger is None:
                raise BiotagError("no model is loaded")
            batch = BatchJob([spec.input_dir], spec.output_dir, spec.fmt,
                             f"{self.tagger.name} {self.tagger.version}", spec.html, spec.encoding)
            Path(spec.output_dir).mkdir(parents=True, exist_ok=True)
        except Exception as exc:
            res = BatchResult()
            res.failed.append(("", _short_error(exc)))
            self.batchFinished.emit(job, res)
            return
        res = batch.result
        total = len(batch.items)
        for k, (doc_id, path) in enumerate(batch.items):
            if self._cancelled(job):
                res.cancelled = True
                break
            if batch.finished(doc_id):
                res.skipped.append(doc_id)
                self.batchProgress.emit(job, k + 1, total, doc_id)
                continue
            self.batchProgress.emit(job, k, total, doc_id)
            try:
                doc = self._tag_doc(job, doc_id, batch.read(path), spec.lang, spec.opts)
                if doc is None:
                    res.cancelled = True
                    break
                batch.write(doc)
            except Exception as exc:
                if not isinstance(exc, BiotagError):
                    log_exception(exc)
                batch.fail(doc_id, _short_error(exc))
            self.batchProgress.emit(job, k + 1, total, doc_id)
        self.batchFinished.emit(job, res)


class TaggerService(QObject):
    """GUI-side handle of the tagging thread. Signals are delivered on the GUI thread."""

    loaded = Signal(str, str, str)
    loadFailed = Signal(str)
    segmentTagged = Signal(int, int, int, object, int)
    documentTagged = Signal(int, object)
    tagFinished = Signal(int, str, str)
    batchProgress = Signal(int, int, int, str)
    batchFinished = Signal(int, object)
    busyChanged = Signal(bool)

    _load = Signal(str, str, int, bool)
    _tag = Signal(int, str, object, object)
    _batch = Signal(int, object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._next_job = 1
        self._cancel_below = 0
        self._cancelled: set[int] = set()
        self._running: set[int] = set()
        self.model_name = ""
        self.thread = QThread()
        self.thread.setObjectName("biotag-tagger")
        self.worker = _Worker(self)
        self.worker.moveToThread(self.thread)
        self._load.connect(self.worker.load)
        self._tag.connect(self.worker.tag)
        self._batch.connect(self.worker.batch)
        self.worker.loaded.connect(self._on_loaded)
        self.worker.loadFailed.connect(self._on_load_failed)
        self.worker.segmentTagged.connect(self.segmentTagged)
        self.worker.documentTagged.connect(self.documentTagged)
        self.worker.tagFinished.connect(self._on_tag_finished)
        self.worker.batchProgress.connect(self.batchProgress)
        self.worker.batchFinished.connect(self._on_batch_finished)
        self.thread.start()
        self._loading = False

    # --- state ------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return bool(self._running) or self._loading

    @property
    def has_model(self) -> bool:
        return self.worker.tagger is not None

    def _job(self) -> int:
        j = self._next_job
        self._next_job += 1
        self._running.add(j)
        self.busyChanged.emit(True)
        return j

    def _done(self, job: int):
        self._running.discard(job)
        if not self.busy:
            self.busyChanged.emit(False)

    # --- requests ---------------------------------------------------------------------------
    def load(self, bundle: str, device: str = "cpu", threads: int = 0, one_pass: bool = False) -> None:
        self._loading = True
        self.busyChanged.emit(True)
        self._load.emit(str(bundle), device, int(threads or 0), bool(one_pass))

    def tag(self, text: str, lang: str | None = None, opts=None) -> int:
        job = self._job()
        self._tag.emit(job, text, lang, opts)
        return job

    def batch(self, spec: BatchSpec) -> int:
        job = self._job()
        self._batch.emit(job, spec)
        return job

    def cancel(self, job: int | None = None) -> None:
        """Cancel one job, or every running and queued one (at the next segment boundary)."""
        if job is None:
            self._cancel_below = self._next_job
        else:
            self._cancelled.add(job)

    def shutdown(self, wait_ms: int = 30000) -> None:
        self.cancel()
        self.thread.quit()
        if not self.thread.wait(wait_ms):
            self.thread.terminate()
            self.thread.wait(2000)

    # --- worker replies ---------------------------------------------------------------------
    def _on_loaded(self, name, version, device):
        self._loading = False
        self.model_name = f"{name} {version}"
        self.loaded.emit(name, version, device)
        if not self.busy:
            self.busyChanged.emit(False)

    def _on_load_failed(self, msg):
        self._loading = False
        self.loadFailed.emit(msg)
        if not self.busy:
            self.busyChanged.emit(False)

    def _on_tag_finished(self, job, status, msg):
        self._done(job)
        self.tagFinished.emit(job, status, msg)

    def _on_batch_finished(self, job, res):
        self._done(job)
        self.batchFinished.emit(job, res)


__all__ = ["TaggerService", "BatchSpec", "BatchResult", "batch_output_path"]
