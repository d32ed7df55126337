"""Settings: what the app remembers (QSettings) and the Settings dialog (model bundle, device,
threads, user dictionary).

Only preferences are stored (paths, window geometry, recent files); never document text. Tests
pass their own QSettings (an INI file in a temporary folder) so the user's settings are untouched.
"""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QVBoxLayout,
                               QWidget)

from biotag.runtime.errors import BiotagError

ORG, APP = "biotag", "biotag-desktop"
MAX_RECENT = 10


def _bool(v, default=False) -> bool:
    if v is None:
        return default
    if isinstance(v, str):
        return v.lower() in ("1", "true", "yes")
    return bool(v)


class AppSettings:
    """Typed access to the app's QSettings."""

    def __init__(self, qs: QSettings | None = None):
        self.qs = qs if qs is not None else QSettings(ORG, APP)

    @classmethod
    def at(cls, path: str | os.PathLike) -> "AppSettings":
        """Settings kept in an INI file of your choice (tests, portable installs)."""
        return cls(QSettings(str(path), QSettings.Format.IniFormat))

    def _get(self, key, default=None):
        v = self.qs.value(key)
        return default if v is None else v

    # model
    @property
    def bundle_dir(self) -> str:
        from biotag.runtime.tagger import default_bundle_dir

        return str(self._get("model/bundle", "") or default_bundle_dir())

    @bundle_dir.setter
    def bundle_dir(self, v: str):
        self.qs.setValue("model/bundle", str(v))

    @property
    def device(self) -> str:
        v = str(self._get("model/device", "cpu"))
        return v if v in ("cpu", "gpu", "auto") else "cpu"

    @device.setter
    def device(self, v: str):
        self.qs.setValue("model/device", v)

    @property
    def threads(self) -> int:
        try:
            return max(0, int(self._get("model/threads", 0)))
        except (TypeError, ValueError):
            return 0

    @threads.setter
    def threads(self, v: int):
        self.qs.setValue("model/threads", int(v))

    @property
    def dictionary(self) -> str:
        return str(self._get("model/dictionary", ""))

    @dictionary.setter
    def dictionary(self, v: str):
        self.qs.setValue("model/dictionary", v)

    @property
    def one_pass(self) -> bool:
        return str(self._get("model/one_pass", "false")).lower() in ("true", "1")

    @one_pass.setter
    def one_pass(self, v: bool):
        self.qs.setValue("model/one_pass", "true" if v else "false")

    @property
    def dictionary_mode(self) -> str:
        v = str(self._get("model/dictionary_mode", "score"))
        return v if v in ("score", "force") else "score"

    @dictionary_mode.setter
    def dictionary_mode(self, v: str):
        self.qs.setValue("model/dictionary_mode", v)

    # view
    @property
    def threshold(self) -> float | None:
        v = self._get("view/threshold")
        try:
            return None if v in (None, "") else min(1.0, max(0.0, float(v)))
        except (TypeError, ValueError):
            return None

    @threshold.setter
    def threshold(self, v: float):
        self.qs.setValue("view/threshold", float(v))

    @property
    def lang(self) -> str:
        v = str(self._get("view/lang", "auto"))
        return v if v in ("auto", "en", "zh") else "auto"

    @lang.setter
    def lang(self, v: str):
        self.qs.setValue("view/lang", v)

    @property
    def show_rejected(self) -> bool:
        return _bool(self._get("view/show_rejected"), True)

    @show_rejected.setter
    def show_rejected(self, v: bool):
        self.qs.setValue("view/show_rejected", bool(v))

    @property
    def font_size(self) -> int:
        try:
            return min(40, max(7, int(self._get("view/font_size", 12))))
        except (TypeError, ValueError):
            return 12

    @font_size.setter
    def font_size(self, v: int):
        self.qs.setValue("view/font_size", int(v))

    # window
    def geometry(self) -> bytes | None:
        return self._get("window/geometry")

    def window_state(self) -> bytes | None:
        return self._get("window/state")

    def splitter_state(self, name: str) -> bytes | None:
        return self._get(f"window/splitter_{name}")

    def save_window(self, geometry, state, splitters: dict) -> None:
        self.qs.setValue("window/geometry", geometry)
        self.qs.setValue("window/state", state)
        for k, v in splitters.items():
            self.qs.setValue(f"window/splitter_{k}", v)

    # files
    @property
    def recent_files(self) -> list[str]:
        v = self._get("files/recent", [])
        if isinstance(v, str):
            v = [v] if v else []
        return [str(x) for x in v if x]

    def add_recent(self, path: str) -> None:
        path = str(Path(path).resolve())
        lst = [p for p in self.recent_files if p != path]
        lst.insert(0, path)
        self.qs.setValue("files/recent", lst[:MAX_RECENT])

    def clear_recent(self) -> None:
        self.qs.setValue("files/recent", [])

    @property
    def last_dir(self) -> str:
        return str(self._get("files/last_dir", "") or Path.home())

    @last_dir.setter
    def last_dir(self, v: str):
        self.qs.setValue("files/last_dir", str(v))

    def sync(self) -> None:
        self.qs.sync()


def check_bundle(path: str, full: bool = False) -> str:
    """'' when ``path`` looks like a usable bundle (manifest readable, files present; with
    ``full`` also sizes and sha256), else a message for the user."""
    from biotag.runtime.bundle import Bundle

    if not path:
        return "Choose a model bundle folder."
    try:
        b = Bundle.open(path)
        if full:
            b.verify()
        else:
            for rel in b.manifest.get("files", {}):
                if not b.path(rel).is_file():
                    return f"{b.path(rel)}: missing model file"
            if "file" not in (b.manifest.get("llm") or {}):
                return f"{path}: the manifest names no model file"
    except BiotagError as exc:
        return str(exc)
    return ""


class SettingsDialog(QDialog):
    """Model bundle, device, threads and user dictionary."""

    def __init__(self, settings: AppSettings, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("biotag settings")
        self.settings = settings
        self.bundle = QLineEdit(settings.bundle_dir)
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._browse)
        verify = QPushButton("Verify")
        verify.setToolTip("Check every model file against the bundle's manifest (sha256)")
        verify.clicked.connect(self._verify)
        row = QHBoxLayout()
        row.addWidget(self.bundle, 1)
        row.addWidget(browse)
        row.addWidget(verify)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.device = QComboBox()
        from biotag.runtime.tagger import gpu_available

        gpu = gpu_available()
        self.device.addItem("CPU", "cpu")
        self.device.addItem("GPU" if gpu else "GPU (not available in this build)", "gpu")
        self.device.addItem("Automatic", "auto")
        if not gpu:
            self.device.model().item(1).setEnabled(False)
        k = self.device.findData(settings.device)
        self.device.setCurrentIndex(max(0, k))
        self.threads = QSpinBox()
        self.threads.setRange(0, max(1, os.cpu_count() or 1))
        self.threads.setSpecialValueText("automatic")
        self.threads.setValue(settings.threads)
        self.one_pass = QCheckBox("One pass per sentence for all types (about 3x faster, less accurate)")
        self.one_pass.setToolTip("Ask for every type of the sentence's language at once instead of one "
                                 "question per training corpus (biotag tag --one-pass)")
        self.one_pass.setChecked(settings.one_pass)
        self.dictionary = QLineEdit(settings.dictionary)
        self.dictionary.setPlaceholderText("optional: TSV/CSV of term<TAB>type")
        dbrowse = QPushButton("Choose…")
        dbrowse.clicked.connect(self._browse_dict)
        drow = QHBoxLayout()
        drow.addWidget(self.dictionary, 1)
        drow.addWidget(dbrowse)
        self.dict_mode = QComboBox()
        self.dict_mode.addItem("Matches are candidates (scored)", "score")
        self.dict_mode.addItem("Matches are always tagged", "force")
        self.dict_mode.setCurrentIndex(max(0, self.dict_mode.findData(settings.dictionary_mode)))
        form = QFormLayout()
        form.addRow("Model bundle:", row)
        form.addRow("", self.status)
        form.addRow("Device:", self.device)
        form.addRow("Threads:", self.threads)
        form.addRow("Speed:", self.one_pass)
        form.addRow("User dictionary:", drow)
        form.addRow("Dictionary mode:", self.dict_mode)
        note = QLabel("biotag runs entirely on this computer: no network access, no telemetry. "
                      "Files are only written where you choose.")
        note.setWordWrap(True)
        note.setStyleSheet("color:#555")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(note)
        lay.addWidget(buttons)
        self.resize(640, self.sizeHint().height())
        self._show(check_bundle(self.bundle.text()))

    def _show(self, msg: str, ok_text: str = "Bundle found.") -> None:
        if msg:
            self.status.setText(msg)
            self.status.setStyleSheet("color:#b00020")
        else:
            self.status.setText(ok_text)
            self.status.setStyleSheet("color:#1b7f3b")

    def _browse(self):
        d = QFileDialog.getExistingDirectory(self, "Choose a model bundle folder", self.bundle.text())
        if d:
            self.bundle.setText(d)
            self._show(check_bundle(d))

    def _browse_dict(self):
        f, _ = QFileDialog.getOpenFileName(self, "Choose a user dictionary", self.dictionary.text(),
                                           "Dictionaries (*.tsv *.csv *.txt);;All files (*)")
        if f:
            self.dictionary.setText(f)

    def _verify(self):
        from PySide6.QtCore import Qt
        from PySide6.QtWidgets import QApplication

        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            msg = check_bundle(self.bundle.text(), full=True)
        finally:
            QApplication.restoreOverrideCursor()
        self._show(msg, "All model files verified (size and sha256 match the manifest).")

    def values(self) -> dict:
        return {"bundle": self.bundle.text().strip(), "device": self.device.currentData(),
                "threads": self.threads.value(), "one_pass": self.one_pass.isChecked(),
                "dictionary": self.dictionary.text().strip(),
                "dictionary_mode": self.dict_mode.currentData()}
