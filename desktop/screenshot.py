"""Screenshots of the app on the annotated examples (no model needed, nothing tagged):

    python -m biotag.desktop.screenshot OUTDIR            # writes screenshot_en.png, screenshot_zh.png
    xvfb-run -a python -m biotag.desktop.screenshot docs  # a real X window (CI)

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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m biotag.desktop.screenshot")
    p.add_argument("outdir")
    p.add_argument("--examples", default=str(EXAMPLES), help="folder with nested_en.jsonl and nested_zh.jsonl")
    args = p.parse_args(argv)
    for path in make_screenshots(args.outdir, args.examples):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
