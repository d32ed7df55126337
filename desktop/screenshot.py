"""Screenshots of the app on the annotated examples (no model needed, nothing tagged):

    python -m biotag.desktop.screenshot OUTDIR            # writes screenshot_en.png, screenshot_zh.png
    xvfb-run -a python -m biotag.desktop.screenshot docs  # a real X window (CI)

and of the example notes tagged live by a bundle (part of shipping a bundle; the README shows them):

    python -m biotag.desktop.screenshot docs --tagged [--bundle DIR]
        # screenshot_tagged_en.png, screenshot_tagged_zh.png, screenshot_tagged_clinical_en.png

Each tagged picture carries the model that tagged it ("name version") in its PNG text chunk
``biotag-model``; the tests check that the README's pictures show the default bundle.

Runs with any Qt platform (xcb under Xvfb, or offscreen). Settings go to a temporary folder, so
the user's settings are untouched.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _settle(app, ms: int = 150) -> None:
    import time

    end = time.monotonic() + ms / 1000
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def shoot(win, app, jsonl: Path, select_text: str, out: Path, review=()) -> Path:
    models = win.open_path(jsonl)
    win.set_current(models[0])
    win.set_threshold(0.0)
    m = win.current
    for text, action in review:   # show review marks too: accepted, rejected (struck out)
        ids = [i for i, e in m.items() if e.text == text]
        getattr(m, action)(ids[:1])
    m.undo_stack.setClean()
    target = [i for i, e in m.items() if e.text == select_text]
    if target:
        win.select(target[:1])
    win.banner.hide()
    _settle(app)
    win.view.verticalScrollBar().setValue(0)
    _settle(app)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not win.grab().save(str(out)):
        raise OSError(f"{out}: cannot save the screenshot")
    return out


def make_screenshots(outdir: str | Path, examples: str | Path = EXAMPLES, size=(1360, 800)) -> list[Path]:
    from .app import make_app
    from .main_window import MainWindow
    from .settings import AppSettings

    app = make_app()
    outdir, examples = Path(outdir), Path(examples)
    paths = []
    with tempfile.TemporaryDirectory() as tmp:
        reviews = {"en": [("ibuprofen", "accept"), ("aspirin", "accept"), ("man", "reject")],
                   "zh": [("阿司匹林", "accept")]}
        for lang, sel in (("en", "myocardial infarction"), ("zh", "心肌梗死")):
            win = MainWindow(AppSettings.at(Path(tmp) / f"settings-{lang}.ini"), interactive=False, autoload=False)
            win.resize(*size)
            win.splitter.setSizes([int(size[0] * 0.58), int(size[0] * 0.42)])
            win.show()
            _settle(app, 300)
            paths.append(shoot(win, app, examples / f"nested_{lang}.jsonl", sel, outdir / f"screenshot_{lang}.png",
                               reviews[lang]))
            win.close()
            win.deleteLater()
            _settle(app, 50)
    return paths


# (note tagged live, picture name): the README's tagged screenshots
TAGGED = (("note_en.txt", "screenshot_tagged_en.png"), ("note_zh.txt", "screenshot_tagged_zh.png"),
          ("note_discharge_en.txt", "screenshot_tagged_clinical_en.png"))


def make_tagged_screenshots(outdir: str | Path, bundle: str | Path | None = None,
                            examples: str | Path = EXAMPLES) -> list[Path]:
    """Tag each note of TAGGED in a fresh app process (``biotag-gui NOTE --tag --screenshot``),
    as a user would, and return the pictures written."""
    import os
    import subprocess

    from biotag.runtime.tagger import default_bundle_dir

    bundle = Path(bundle) if bundle is not None else default_bundle_dir()
    env = dict(os.environ)
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = []
    with tempfile.TemporaryDirectory() as tmp:
        for note, name in TAGGED:
            out = outdir / name
            cmd = [sys.executable, "-m", "biotag.desktop.app", str(Path(examples) / note), "--bundle", str(bundle),
                   "--settings", str(Path(tmp) / f"settings-{name}.ini"), "--tag", "--screenshot", str(out)]
            if subprocess.run(cmd, env=env).returncode != 0:
                raise SystemExit(f"biotag: tagging {note} for its screenshot failed")
            paths.append(out)
    return paths


def png_text(path: str | Path) -> dict[str, str]:
    """The text chunks of a PNG file (keyword -> text), as Qt reads them."""
    from PySide6.QtGui import QImageReader

    reader = QImageReader(str(path))
    if bytes(reader.format()) != b"png":
        raise ValueError(f"{path}: not a PNG file")
    return {key: reader.text(key) for key in reader.textKeys()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m biotag.desktop.screenshot")
    p.add_argument("outdir")
    p.add_argument("--examples", default=str(EXAMPLES), help="folder with nested_en.jsonl and nested_zh.jsonl")
    p.add_argument("--tagged", action="store_true",
                   help="tag the example notes with a bundle and picture the result (screenshot_tagged_*.png)")
    p.add_argument("--bundle", help="with --tagged: the bundle (default: the embedded default bundle)")
    args = p.parse_args(argv)
    paths = (make_tagged_screenshots(args.outdir, args.bundle) if args.tagged
             else make_screenshots(args.outdir, args.examples))
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
