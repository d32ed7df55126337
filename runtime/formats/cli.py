"""``biotag convert IN OUT [--from X] [--to Y] [--encoding E] [--errors strict|replace]``."""
from __future__ import annotations

import sys


def add_cli(subparsers) -> None:
    from . import FORMATS
    names = ", ".join(FORMATS)
    p = subparsers.add_parser(
        "convert", help="convert documents between formats",
        description=f"Convert annotated documents between formats ({names}). Formats are guessed "
                    f"from the file names when not given; a folder is brat. '-' is stdin/stdout.")
    p.add_argument("input", metavar="IN", help="input file, brat folder, or - for stdin")
    p.add_argument("output", metavar="OUT", help="output file, brat folder, or - for stdout")
    p.add_argument("--from", dest="from_fmt", metavar="X", help=f"input format ({names})")
    p.add_argument("--to", dest="to_fmt", metavar="Y", help=f"output format ({names})")
    p.add_argument("--encoding", default="utf-8", help="input text encoding (default utf-8)")
    p.add_argument("--errors", default="strict", choices=("strict", "replace"),
                   help="what to do with bytes that are not valid in the encoding")
    p.set_defaults(func=run)


def run(args) -> int:
    from . import get_format, guess_format, read_documents, write_documents
    src = get_format(args.from_fmt).name if args.from_fmt else guess_format(args.input)
    dst = get_format(args.to_fmt).name if args.to_fmt else guess_format(args.output, for_writing=True)
    docs = read_documents(args.input, src, encoding=args.encoding, errors=args.errors)
    write_documents(docs, args.output, dst)
    n_ent = sum(len(d.entities) for d in docs)
    print(f"biotag convert: {len(docs)} documents, {n_ent} entities: {args.input} ({src}) -> "
          f"{args.output} ({dst})", file=sys.stderr)
    return 0
