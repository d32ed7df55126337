"""Entry point of the desktop tagger: ``biotag-gui`` or ``python -m biotag.desktop.app``.

    biotag-gui [FILE ...] [--bundle DIR] [--settings INI] [--tag] [--screenshot PNG]

FILEs are notes (.txt, .md) or tagged documents (.jsonl, BioC, CSV) to open. ``--bundle`` uses a
model bundle for this session; ``--settings`` keeps the app's settings in an INI file of your
choice instead of the user's configuration. ``--tag`` tags the first opened note as soon as the
model is loaded; ``--screenshot PNG`` then saves a picture of the window and quits (documentation
and the Xvfb smoke test; exit code 1 when loading or tagging failed).
"""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="biotag-gui", description="biotag desktop tagger")
    p.add_argument("files", nargs="*", help="notes or tagged documents to open")
    p.add_argument("--bundle", help="model bundle folder (default: the one chosen in Settings)")
    p.add_argument("--settings", help="keep settings in this INI file")
    p.add_argument("--no-model", action="store_true", help="do not load a model (review only)")
    p.add_argument("--tag", action="store_true", help="tag the first opened note once the model is loaded")
    p.add_argument("--screenshot", metavar="PNG",
                   help="with --tag: when tagging ends, save a screenshot of the window here and quit")
    return p


SCREENSHOT_MODEL_KEY = "biotag-model"


def save_screenshot(win, path: str, model_name: str = "") -> bool:
    """Save a picture of the window as PNG; ``model_name`` ("name version" of the bundle that tagged
    it) goes into the PNG's text chunk ``biotag-model``, so a picture says which model it shows."""
    image = win.grab().toImage()
    if model_name:
        image.setText(SCREENSHOT_MODEL_KEY, model_name)
    return image.save(str(path), "PNG")


def _automate(app, win, tag: bool, screenshot: str | None) -> None:
    """--tag / --screenshot: drive the window like a user would, then (screenshot) quit."""
    from PySide6.QtCore import QTimer

    state = {"rc": 0}

    def finish(ok: bool) -> None:
        if not screenshot:
            return

        def shoot_and_quit():
            saved = save_screenshot(win, screenshot, win.service.model_name)
            state["rc"] = 0 if ok and saved else 1
            win.close()                      # stops the tagging thread before the app ends
            app.exit(state["rc"])

        QTimer.singleShot(400, shoot_and_quit)

    def on_loaded(*_):
        if tag and win.tag_current() is None:
            finish(False)
        elif not tag:
            finish(True)

    win.service.loaded.connect(on_loaded)
    win.service.loadFailed.connect(lambda *_: finish(False))
    win.service.tagFinished.connect(lambda job, status, msg: finish(status == "done"))


def make_app(argv: list[str] | None = None):
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("biotag")
    app.setOrganizationName("biotag")
    app.setApplicationDisplayName("biotag")
    from .fonts import families
    from PySide6.QtGui import QFont

    f = QFont(app.font())
    f.setFamilies(families())
    app.setFont(f)
    return app


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    app = make_app()
    from .main_window import MainWindow
    from .settings import AppSettings

    settings = AppSettings.at(args.settings) if args.settings else AppSettings()
    win = MainWindow(settings, autoload=not args.bundle and not args.no_model)
    if args.bundle:
        win.load_bundle(args.bundle, initial=True)  # for this session; not saved
    win.show()
    if args.files:
        win.open_paths(args.files)
    if args.tag or args.screenshot:
        _automate(app, win, args.tag, args.screenshot)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
