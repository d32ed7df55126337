"""Model bundles: a folder with the model files and ``manifest.json``; verified before use.

manifest.json (schema 1)::

    {"schema_version": 1, "name": str, "version": str,
     "files": {"<relative path>": {"sha256": str, "size": int}, ...},
     "llm": {"file": str, "quant": str, "format": "S"|"P",
             "marker_bias": float,                     # log-odds toward markers, every instruction
             "task_bias": {instruction: float}},       # optional: an instruction's own bias
     "profiles": {"en": [dataset, ...], "zh": [...]},      # tasks run on user text per language
     "selector": null | {"file": str, "tokenizer": str, "thresholds": {type: float}, "default": float,
                         "fusion": "selector" | "geometric"},   # what thresholds compare (selector.fuse)
     "gazetteer": str | null, "base_model": {...}, "metrics": {...}, "library_versions": {...}}

A file entry may carry ``"location": "cache"``: the file is large, is not shipped, and is rebuilt on
the user's machine by the bundle builder (``ensure_files``; the builder, biotag.export, is found by
name in ``REBUILDERS`` when a file has to be rebuilt); it then lives in the bundle's cache folder. A copy of it
inside the bundle folder itself takes precedence: that copy is the one verified and loaded.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .errors import ModelError

SCHEMA_VERSION = 1


def _json_kind(v) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(v), type(v).__name__)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def adapter_config(bundle_dir: str | os.PathLike) -> dict:
    """The bundle's adapter ``config.json`` (what its model was trained with: ``marker_ids``,
    ``training_config``); {} when the bundle has none or it cannot be read."""
    try:
        cfg = json.loads((Path(bundle_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return cfg if isinstance(cfg, dict) else {}


def cache_root() -> Path:
    return Path(os.environ.get("BIOTAG_CACHE", Path.home() / ".cache" / "biotag"))


class Bundle:
    def __init__(self, root: Path, manifest: dict):
        self.root = root
        self.manifest = manifest

    @property
    def name(self) -> str:
        return self.manifest.get("name", self.root.name)

    @property
    def version(self) -> str:
        return str(self.manifest.get("version", "?"))

    def cache_dir(self) -> Path:
        return cache_root() / "bundles" / f"{self.name}-{self.version}"

    def path(self, rel: str) -> Path:
        """Where file ``rel`` is read from: the bundle folder, or for a cache-located file that the
        folder does not hold, the bundle's cache folder."""
        entry = self.manifest.get("files", {}).get(rel, {})
        if entry.get("location") == "cache" and not (self.root / rel).is_file():
            return self.cache_dir() / rel
        return self.root / rel

    @classmethod
    def open(cls, root: str | os.PathLike) -> "Bundle":
        root = Path(root)
        mf = root / "manifest.json"
        if not mf.is_file():
            raise ModelError(f"{root}: not a model bundle (no manifest.json)")
        try:
            manifest = json.loads(mf.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise ModelError(f"{mf}: unreadable manifest ({exc})") from None
        if not isinstance(manifest, dict):
            raise ModelError(f"{mf}: not a bundle manifest (a JSON object was expected, "
                             f"found {_json_kind(manifest)})")
        if manifest.get("schema_version") != SCHEMA_VERSION:
            raise ModelError(f"{mf}: unsupported schema_version {manifest.get('schema_version')!r}")
        files = manifest.get("files", {})
        if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, dict)
                                                  for k, v in files.items()):
            raise ModelError(f"{mf}: 'files' must be an object of file entries")
        for key in ("llm", "selector", "profiles"):
            if manifest.get(key) is not None and not isinstance(manifest[key], dict):
                raise ModelError(f"{mf}: {key!r} must be an object, found {_json_kind(manifest[key])}")
        bias = (manifest.get("llm") or {}).get("task_bias")
        if bias is not None and not (isinstance(bias, dict) and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in bias.values())):
            raise ModelError(f"{mf}: llm.task_bias must map instruction names to numbers")
        return cls(root, manifest)

    def llm_path(self) -> Path | None:
        """The GGUF that tagging loads (None when the manifest names none)."""
        rel = (self.manifest.get("llm") or {}).get("file")
        return self.path(rel) if isinstance(rel, str) else None

    def verify(self, files: list[str] | None = None) -> list[str]:
        """Check size and sha256 of every file (or the given ones). Raises ModelError naming the
        first bad file; returns the files checked."""
        entries = self.manifest.get("files", {})
        names = files if files is not None else list(entries)
        for rel in names:
            if rel not in entries:
                raise ModelError(f"{self.root}: {rel} is not listed in the manifest")
            p = self.path(rel)
            want = entries[rel]
            if not p.is_file():
                hint = " (run `biotag bundle build-default` or see the README)" if want.get("location") == "cache" else ""
                raise ModelError(f"{p}: missing model file{hint}")
            size = p.stat().st_size
            if size != want.get("size"):
                raise ModelError(f"{p}: size {size} does not match the manifest ({want.get('size')}): "
                                 f"truncated or altered file")
            if sha256_file(p) != want.get("sha256"):
                raise ModelError(f"{p}: sha256 does not match the manifest: altered file")
        return names


def add_cli(sub) -> None:
    p = sub.add_parser("bundle", help="inspect and verify model bundles")
    bsub = p.add_subparsers(dest="bundle_cmd", metavar="ACTION")
    v = bsub.add_parser("verify", help="check every file of a bundle against its manifest")
    v.add_argument("dir")

    def _verify(args) -> int:
        b = Bundle.open(args.dir)
        names = b.verify()
        print(f"{b.name} {b.version}: {len(names)} file(s) verified")
        for rel in names:
            print(f"  {rel}: {b.path(rel)}")
        llm = b.llm_path()
        if llm is not None:
            print(f"model loaded by tagging: {llm}")
        return 0

    v.set_defaults(func=_verify)


# -- rebuilding cache-located files -----------------------------------------------------------
# The builder of cache-located files is not part of the runtime: it is named here and imported only
# when a file is missing (the export package; numpy + gguf + llama.cpp, no torch). Another builder
# can take its place with register_rebuilder.
REBUILDERS: dict[str, object] = {"llm": "biotag.export.bundle:rebuild_llm"}


def register_rebuilder(kind: str, fn) -> None:
    """``fn(bundle, rel, progress)`` rebuilds a missing cache-located file of ``kind``."""
    REBUILDERS[kind] = fn


def _rebuilder(kind: str):
    fn = REBUILDERS.get(kind)
    if isinstance(fn, str):
        import importlib

        mod, name = fn.split(":")
        try:
            fn = getattr(importlib.import_module(mod), name)
        except ImportError as exc:
            raise ModelError(f"the bundle's model file must be rebuilt, and the bundle builder ({mod}) "
                             f"cannot be imported ({exc}); reinstall biotag") from None
        REBUILDERS[kind] = fn
    if fn is None:
        raise ModelError(f"no builder for cache-located {kind} files")
    return fn


def ensure_files(bundle: "Bundle", progress: bool = True) -> list[str]:
    """Rebuild the bundle's missing cache-located files from their recipes; returns their names."""
    missing = [rel for rel, entry in bundle.manifest.get("files", {}).items()
               if entry.get("location") == "cache" and not bundle.path(rel).is_file()]
    for rel in missing:
        _rebuilder("llm")(bundle, rel, progress)
    return missing
