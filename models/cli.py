"""`biotag train ...` sub-commands. Importing this module must not import torch (the runtime CLI
registers it); training modules are imported only when a training command runs."""
from __future__ import annotations

import sys

from biotag.runtime.errors import BiotagError


def _need_train_extra():
    try:
        import peft  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise BiotagError(f"training needs the 'train' extra (pip install 'biotag[train]'): {exc}") from None


def _train_llm(args) -> int:
    _need_train_extra()
    from .train_llm import run_cli

    return run_cli(args)


def _train_selector(args) -> int:
    _need_train_extra()
    from .train_selector import run_cli

    return run_cli(args)


def _train_soup(args) -> int:
    _need_train_extra()
    from .soup import run_cli

    return run_cli(args)


def _train_eval(args) -> int:
    _need_train_extra()
    from .eval_llm import run

    return run(args)


def add_cli(sub) -> None:
    p = sub.add_parser("train", help="train the tagging LLM or the selector, or average adapters (needs biotag[train])")
    tsub = p.add_subparsers(dest="what", metavar="WHAT")
    q = tsub.add_parser("llm", help="fine-tune the tagging LLM from a config file")
    q.add_argument("--config", help="JSON config in models/configs/ (settings and defaults: models/train_llm.py)")
    q.add_argument("--resume", action="store_true",
                   help="continue from the run's checkpoint, or from its committed small state")
    q.add_argument("--max-steps", type=int, help="stop early after this many steps (no artifacts)")
    q.add_argument("--precision-check", type=int, metavar="N",
                   help="train N steps with fp32 weights and padded batches, and N with the config's "
                        "precision and packing, from the same start; print JSON")
    q.add_argument("--curve-png", metavar="CSV", nargs="+",
                   help="draw a run's learning curve (curve.csv) as PNG next to it; after it, the "
                        "curves of its continuations (start_step), drawn on from where it stopped")
    q.add_argument("--reference", metavar="CONFIG",
                   help="with --precision-check: the reference run's config (default: this config "
                        "with fp32 weights and padded batches)")
    q.add_argument("--export-state", metavar="DIR",
                   help="write the run's current weights as an adapter folder (a snapshot to evaluate)")
    q.set_defaults(func=_train_llm)
    q = tsub.add_parser("selector", help="train the entity selector (MiniLM span classifier) from a config file")
    q.add_argument("--config", required=True, help="JSON config in models/configs/ (e.g. selector.json)")
    q.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    q.add_argument("--max-steps", type=int, help="stop early after this many steps (no artifacts)")
    q.set_defaults(func=_train_selector)
    q = tsub.add_parser("soup", help="average adapters trained one after another from the same start")
    q.add_argument("--adapter", nargs="+", required=True, metavar="DIR",
                   help="adapter folders written by 'biotag train llm' (same rank, targets and markers)")
    q.add_argument("--out", required=True, metavar="DIR", help="folder for the averaged adapter")
    q.set_defaults(func=_train_soup)
    e = tsub.add_parser("eval", help="evaluate the fp32 PyTorch model (base + adapter) on corpora")
    e.add_argument("--adapter", required=True, help="folder written by 'biotag train llm'")
    e.add_argument("--corpus", nargs="+", required=True)
    e.add_argument("--split", default="dev")
    e.add_argument("--sample", type=int)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--data-dir")
    e.add_argument("--threads", type=int)
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=_train_eval)


def main(what: str, argv=None) -> int:
    """``biotag train WHAT`` with ``argv`` (default: the process's arguments): the entry point of
    ``python -m biotag.models.train_llm`` and ``python -m biotag.models.train_selector``."""
    import argparse

    ap = argparse.ArgumentParser(prog="biotag")
    add_cli(ap.add_subparsers())
    a = ap.parse_args(["train", what, *(sys.argv[1:] if argv is None else argv)])
    return a.func(a)
