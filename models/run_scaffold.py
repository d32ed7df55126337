"""The scaffolding of a training run that ``train_llm`` and ``train_selector`` share.

- ``log``: one timestamped line per event;
- ``resolve``: a path of a config, relative to the repository, with ``$VARS`` expanded;
- ``read_config``: the JSON object of a config file;
- ``config_hash``: the name of a run, a hash over the config keys that change the trained weights
  (each trainer names the keys it leaves out);
- ``replace_atomically``, ``save_checkpoint``, ``load_checkpoint``, ``refuse_other_run``: files
  written under a temporary name and renamed into place, so an interrupted write leaves the
  previous checkpoint whole; a run resumes only from what its own config wrote;
- ``lr_factor``, ``set_lr``: the learning-rate schedule (linear warmup, then cosine or linear
  decay) applied to the optimizer's parameter groups.

Importing this module imports neither torch nor another project module.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, TextIO

REPO = Path(__file__).resolve().parents[1]


def log(msg: str, stream: TextIO | None = None) -> None:
    """``msg`` on one line after the time of day, flushed, on ``stream`` (default: stderr)."""
    print(time.strftime("%H:%M:%S ") + msg, file=stream or sys.stderr, flush=True)


def resolve(path: str | Path, base: Path = REPO) -> Path:
    """``path`` with ``$VARS`` expanded; a relative path is taken relative to ``base``."""
    p = Path(os.path.expandvars(str(path)))
    return p if p.is_absolute() else base / p


def read_config(path: str | Path) -> dict:
    """The config file's JSON object (SystemExit if the file holds another JSON value)."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise SystemExit(f"{path}: a config is a JSON object")
    return raw


def config_hash(cfg: dict, ignore: Iterable[str]) -> str:
    """12 hex digits of the sha256 of ``cfg`` without the ``ignore`` keys (JSON, keys sorted)."""
    keep = {k: v for k, v in cfg.items() if k not in ignore}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:12]


def replace_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` to ``<path>.tmp``, then rename it to ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def save_checkpoint(path: Path, state: dict) -> None:
    """``torch.save(state)`` to ``path``, atomically."""
    import torch

    replace_atomically(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: Path) -> dict:
    """What ``save_checkpoint`` wrote to ``path``, its tensors on the CPU."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def refuse_other_run(path: Path, same_run: bool, what: str = "config") -> None:
    """SystemExit unless ``same_run``: the state in ``path`` was written by this run's config."""
    if not same_run:
        raise SystemExit(f"{path} was written by a different {what}; refusing to resume")


def lr_factor(step: int, warmup: int, total: int, decay: str) -> float:
    """The learning rate of ``step`` as a fraction of the peak: ``(step + 1) / warmup`` during the
    warmup, then ``"cosine"`` decay from 1 to 0.1 at step ``total`` (0.1 after it) or ``"linear"``
    decay from 1 to 0 at step ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    if decay == "cosine":
        prog = (step - warmup) / max(1, total - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, prog)))
    if decay == "linear":
        return max(0.0, (total - step) / max(1, total - warmup))
    raise ValueError(f"unknown learning-rate decay {decay!r}")


def set_lr(opt, peak_lrs: list[float], factor: float) -> None:
    """Each parameter group of ``opt`` at its peak learning rate times ``factor``."""
    for g, peak in zip(opt.param_groups, peak_lrs):
        g["lr"] = peak * factor
