"""Air-gapped install: the wheelhouse installs into a fresh venv with the network blocked (a new,
empty network namespace: `unshare -n`), and the installed `biotag tag` tags an example with exact
offsets, without torch or transformers.

Slow (minutes: pip install of ~500 MB of wheels, the one-time GGUF rebuild, tagging), so it runs only
when asked:

    BIOTAG_SLOW=1 python -m pytest -q tests/test_offline_install.py     # builds dist/wheelhouse if
                                                                        # missing (needs the network
                                                                        # for the build, ~10+ min)
    BIOTAG_WHEELHOUSE=/path/to/wheelhouse python -m pytest -q tests/test_offline_install.py

Without either it is skipped (CI's 30-minute budget cannot absorb a llama.cpp build on every run).
The measured sizes and times are printed and written to <wheelhouse>/../offline-install.json.
"""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WHEELHOUSE = ROOT / "dist" / "wheelhouse"
EXAMPLE = ROOT / "examples" / "note_en.txt"

pytestmark = pytest.mark.slow


def wheelhouse() -> Path:
    if os.environ.get("BIOTAG_WHEELHOUSE"):
        wh = Path(os.environ["BIOTAG_WHEELHOUSE"]).resolve()
        if not (wh / "SHA256SUMS").is_file():
            pytest.fail(f"BIOTAG_WHEELHOUSE={wh}: no SHA256SUMS (not a wheelhouse)")
        return wh
    if os.environ.get("BIOTAG_SLOW") != "1":
        pytest.skip("offline install test: set BIOTAG_SLOW=1 (builds dist/wheelhouse when missing) or "
                    "BIOTAG_WHEELHOUSE=DIR")
    if not (DEFAULT_WHEELHOUSE / "SHA256SUMS").is_file():
        subprocess.run([sys.executable, str(ROOT / "packaging" / "build-wheelhouse"), "--out",
                        str(DEFAULT_WHEELHOUSE)], check=True, timeout=3 * 3600)
    return DEFAULT_WHEELHOUSE


def offline_prefix() -> list[str]:
    """A command prefix that runs its command in a new network namespace (only a down loopback)."""
    if not shutil.which("unshare"):
        pytest.skip("unshare (util-linux) not found: cannot block the network")
    for prefix in (["unshare", "-n", "--"], ["unshare", "-r", "-n", "--"]):
        if subprocess.run(prefix + ["true"], capture_output=True).returncode == 0:
            return prefix
    pytest.skip("cannot create a network namespace here (needs root or unprivileged user namespaces)")


def du(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        if p.is_file() and not p.is_symlink():
            total += p.stat().st_size
    return total


def test_offline_install_and_tag(tmp_path):
    wh = wheelhouse()
    prefix = offline_prefix()
    home = tmp_path / "home"
    home.mkdir()
    # a minimal environment: no PIP_* settings (e.g. a local PIP_FIND_LINKS), no proxies
    env = {"HOME": str(home), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
           "PYTHON": sys.executable if sys.prefix == sys.base_prefix else
           str(Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}")}
    off = lambda cmd, **kw: subprocess.run(prefix + cmd, env=env, capture_output=True, text=True, **kw)

    # the namespace really has no network: even name resolution and a TCP connect fail
    probe = off([env["PYTHON"], "-c", "import socket; socket.create_connection(('pypi.org', 443), timeout=5)"])
    assert probe.returncode != 0, "network is reachable inside the namespace"

    venv = tmp_path / "venv"
    t0 = time.time()
    p = off(["sh", str(wh / "install"), str(venv), "--no-links"], timeout=3600)
    install_s = time.time() - t0
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "checksums OK" in p.stderr
    assert "Model bundle biotag-default" in p.stdout and ": OK," in p.stdout, p.stdout

    py = venv / "bin" / "python"
    # torch / transformers are not installed (and cannot be imported) in the runtime venv
    q = off([str(py), "-c", "import importlib.util as u, json; print(json.dumps("
                            "{m: u.find_spec(m) is not None for m in ('torch', 'transformers', 'peft')}))"])
    assert q.returncode == 0, q.stderr
    assert json.loads(q.stdout) == {"torch": False, "transformers": False, "peft": False}
    freeze = off([str(py), "-m", "pip", "--isolated", "list", "--format", "json"])
    names = {d["name"].lower() for d in json.loads(freeze.stdout)}
    assert "biotag" in names and "llama_cpp_python" in {n.replace("-", "_") for n in names}
    assert not names & {"torch", "transformers", "peft", "accelerate", "optimum"}

    # tag the English example with the installed command, offline
    out = tmp_path / "out"
    t1 = time.time()
    r = off([str(venv / "bin" / "biotag"), "tag", str(EXAMPLE), "--out", str(out), "--format", "jsonl",
             "--threads", "2"], timeout=3600)
    tag_s = time.time() - t1
    assert r.returncode == 0, r.stderr[-3000:]
    lines = (out / "note_en.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    text = EXAMPLE.read_text(encoding="utf-8")
    assert doc["id"] == "note_en" and doc["text"] == text
    ents = doc["entities"]
    assert len(ents) >= 3, ents
    from biotag.runtime.labels import CANONICAL_TYPES
    for e in ents:
        assert 0 <= e["start"] < e["end"] <= len(text)
        assert text[e["start"]:e["end"]] == e["text"], e          # exact code-point offsets
        assert e["type"] in CANONICAL_TYPES, e
    assert {e["type"] for e in ents} & {"Chemical", "Disease"}, ents

    cache = home / ".cache"
    report = {
        "wheelhouse_mib": round(du(wh) / 2**20, 1),
        "wheels": len(list(wh.glob("*.whl"))),
        "venv_mib": round(du(venv) / 2**20, 1),
        "cache_mib": round(du(cache) / 2**20, 1) if cache.exists() else 0.0,
        "install_and_model_build_s": round(install_s, 1),
        "tag_note_en_s": round(tag_s, 1),
        "entities_note_en": len(ents),
        "network_namespace": " ".join(prefix[:-1]),
    }
    (wh.parent / "offline-install.json").write_text(json.dumps(report, indent=1) + "\n")
    print("\noffline install:", json.dumps(report))
