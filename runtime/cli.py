"""The `biotag` command line. Each room registers its sub-commands; heavy imports stay lazy.

Errors a user can act on are printed as one line (``biotag: error: ...``) with a non-zero exit
code; no traceback reaches the user unless BIOTAG_DEBUG=1.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from .errors import BiotagError

# name -> "module:function" that adds the sub-command to the sub-parsers
COMMANDS = {
    "data": "biotag.runtime.corpora:add_cli",
    "convert": "biotag.runtime.formats.cli:add_cli",
    "eval": "biotag.runtime.evaluation.scoring:add_cli",
    "eval-model": "biotag.runtime.evaluation.model_eval:add_cli",
    "compare": "biotag.runtime.evaluation.compare:add_cli",
    "eval-selector": "biotag.runtime.evaluation.selector_eval:add_cli",
    "eval-assertion": "biotag.runtime.evaluation.assertion_eval:add_cli",
    "tag": "biotag.runtime.commands.tag:add_cli",
    "bench": "biotag.runtime.commands.bench:add_cli",
    "bundle": "biotag.runtime.bundle:add_cli",
    "doctor": "biotag.runtime.commands.doctor:add_cli",
    "train": "biotag.models.cli:add_cli",
    "export": "biotag.export.cli:add_cli",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="biotag", description="Offline biomedical named-entity tagger.")
    from . import __version__
    parser.add_argument("--version", action="version", version=f"biotag {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, target in COMMANDS.items():
        mod_name, func = target.split(":")
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            # A room not built yet, or an optional extra not installed: the command is absent,
            # unless the missing module is a real bug inside biotag itself.
            if exc.name and exc.name.startswith("biotag") and exc.name != mod_name:
                raise
            continue
        getattr(mod, func)(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        rc = args.func(args)
        return int(rc or 0)
    except BiotagError as exc:
        print(f"biotag: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("biotag: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # last line of defence: no traceback for users
        if os.environ.get("BIOTAG_DEBUG"):
            raise
        print(f"biotag: internal error: {type(exc).__name__}: {exc} (set BIOTAG_DEBUG=1 for details)",
              file=sys.stderr)
        return 70


if __name__ == "__main__":
    sys.exit(main())
