"""Shared fixtures: a tiny random model bundle built inside the tests (no download, no data)."""
import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]


def _qt_gui_error() -> str | None:
    """Why Qt's GUI modules cannot load here (system libraries such as libEGL, libfontconfig or
    libxkbcommon missing), or None when they load."""
    try:
        import PySide6.QtWidgets  # noqa: F401
    except ImportError as exc:
        return f"Qt cannot load ({exc}); Debian: apt-get install libegl1 libfontconfig1 libxkbcommon0"
    return None


QT_GUI_ERROR = _qt_gui_error()


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    """Without Qt's system libraries pytest-qt would stop the whole run at start-up: unplug it, and
    the GUI tests skip with the reason."""
    if QT_GUI_ERROR:
        plugin = config.pluginmanager.get_plugin("pytest-qt")
        if plugin is not None:
            config.pluginmanager.unregister(plugin)
        config.pluginmanager.set_blocked("pytest-qt")


def build_tiny_bundle(root: Path, seed: int = 0, fmt: str = "S") -> Path:
    from biotag.export.gguf_llama import random_tiny_llama, tiny_vocab, write_llama_gguf
    from biotag.runtime.bundle import SCHEMA_VERSION, sha256_file
    from biotag.runtime.codec import MARKER_TOKENS

    root.mkdir(parents=True, exist_ok=True)
    vocab = tiny_vocab(markers=len(MARKER_TOKENS))
    weights, hp = random_tiny_llama(seed, n_embd=64, n_layer=2, n_head=2, n_head_kv=1, n_ff=128,
                                    n_vocab=len(vocab["tokens"]))
    hp["n_ctx"] = 2048
    gguf = root / "model.gguf"
    write_llama_gguf(gguf, weights, hp, vocab, dtype="f32")
    manifest = {
        "schema_version": SCHEMA_VERSION, "name": "tiny-test", "version": "0",
        "files": {"model.gguf": {"sha256": sha256_file(gguf), "size": gguf.stat().st_size}},
        "llm": {"file": "model.gguf", "quant": "f32", "format": fmt},
        "profiles": {"en": ["bc5cdr", "linnaeus"], "zh": ["cmeee"]},
        "selector": None,
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return root


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    return build_tiny_bundle(tmp_path_factory.mktemp("bundle") / "tiny")
