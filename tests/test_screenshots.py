"""The README's pictures of tagged notes show the model that ships: each one carries, in its PNG
text chunk, the bundle that tagged it, and that must be the embedded default bundle. Shipping a
new bundle therefore means regenerating them (``python -m biotag.desktop.screenshot docs --tagged``)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _png_text(path):
    pytest.importorskip("PySide6")
    from biotag.desktop.screenshot import png_text

    return png_text(path)


def _default_model() -> str:
    from biotag.runtime.tagger import default_bundle_dir

    manifest = json.loads((default_bundle_dir() / "manifest.json").read_text(encoding="utf-8"))
    return f"{manifest['name']} {manifest['version']}"


def test_readme_tagged_screenshots_show_the_default_bundle():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    pictures = re.findall(r"\]\((docs/screenshot_tagged_[^)]+\.png)\)", readme)
    assert len(pictures) >= 3, "the README shows the English, Chinese and clinical notes tagged"
    want = _default_model()
    stale = {p: _png_text(ROOT / p).get("biotag-model") for p in pictures}
    stale = {p: got for p, got in stale.items() if got != want}
    assert not stale, (f"screenshots not made with {want}: {stale}; regenerate them with "
                       f"python -m biotag.desktop.screenshot docs --tagged")


def test_png_text_reads_what_the_app_writes_and_nothing_else(tmp_path):
    pytest.importorskip("PySide6")
    from PySide6.QtGui import QImage

    from biotag.desktop.screenshot import png_text

    img = QImage(4, 3, QImage.Format.Format_RGB32)
    img.fill(0)
    img.save(str(tmp_path / "plain.png"), "PNG")
    assert png_text(tmp_path / "plain.png") == {}           # an unstamped picture fails the check
    img.setText("biotag-model", "biotag-default 9.9.9")
    img.save(str(tmp_path / "stamped.png"), "PNG")
    assert png_text(tmp_path / "stamped.png") == {"biotag-model": "biotag-default 9.9.9"}
    (tmp_path / "not.png").write_bytes(b"GIF89a")
    with pytest.raises(ValueError):
        png_text(tmp_path / "not.png")
