"""``biotag data``: list, stats, words, codec and dump of the registered corpora."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .repairs import ReadReport
from .registry import CorpusSpec, default_data_dir, get_corpus, iter_corpora, resolve_data_dir
from .reports import codec_round_trip_report, corpus_stats, word_boundary_report


# ---------------------------------------------------------------------------------------------
# CLI: biotag data ...
# ---------------------------------------------------------------------------------------------
def _selected(args) -> list[tuple[CorpusSpec, list[str]]]:
    data_dir = resolve_data_dir(args.data_dir)
    specs = list(iter_corpora(data_dir, args.corpus or None))
    out = []
    for spec in specs:
        splits = [s for s in spec.splits if not args.split or s in args.split]
        if args.split and not splits:
            continue
        out.append((spec, splits))
    return out


def _cmd_list(args) -> int:
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    specs = list(iter_corpora(data_dir if data_dir.is_dir() else None))
    if args.json:
        print(json.dumps([s.to_json() for s in specs], ensure_ascii=False, indent=1))
        return 0
    for s in specs:
        print(f"{s.name:16} {s.lang}  {s.format:18} {s.folder:18} {', '.join(s.splits)}")
    return 0


def _cmd_stats(args) -> int:
    data_dir = resolve_data_dir(args.data_dir)
    results = []
    for spec, splits in _selected(args):
        for split in splits:
            st = corpus_stats(spec.name, split, data_dir)
            if not args.examples:
                st.pop("examples", None)
            results.append(st)
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=1))
        return 0
    head = f"{'corpus':16} {'split':6} {'units':>8} {'unit':10} {'mentions':>8} {'kept':>8} " \
           f"{'nested':>7} {'cross':>5} {'repair':>6} {'drop':>5}  types"
    print(head)
    for st in results:
        types = ", ".join(f"{k} {v}" for k, v in st["types"].items())
        print(f"{st['corpus']:16} {st['split']:6} {st['units']:>8} {st['unit']:10} "
              f"{st['mentions']:>8} {st['mentions_kept']:>8} {st['nested_pairs']:>7} "
              f"{st['crossing_pairs']:>5} {st['repaired']:>6} {st['dropped']:>5}  {types}")
        if args.examples:
            for ex in st.get("examples", []):
                print(f"    {ex}")
    return 0


def _cmd_words(args) -> int:
    data_dir = resolve_data_dir(args.data_dir)
    results = []
    for spec, splits in _selected(args):
        for split in splits:
            rep = word_boundary_report(spec.read(split, data_dir), max_examples=args.examples)
            rep = {"corpus": spec.name, "split": split, **rep}
            results.append(rep)
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=1))
        return 0
    print(f"{'corpus':16} {'split':6} {'entities':>8} {'aligned':>8} {'share':>8}  main causes")
    for r in results:
        causes = "; ".join(f"{c} {n}" for c, n in list(r["causes"].items())[:3])
        print(f"{r['corpus']:16} {r['split']:6} {r['entities']:>8} {r['aligned']:>8} "
              f"{100 * r['share']:>7.2f}%  {causes}")
    if args.examples:
        for r in results:
            for c, exs in r["examples"].items():
                for ex in exs:
                    print(f"  {r['corpus']}/{r['split']} {c}: {ex}")
    return 0


def _cmd_codec(args) -> int:
    data_dir = resolve_data_dir(args.data_dir)
    results = []
    for spec, splits in _selected(args):
        for split in splits:
            rep = codec_round_trip_report(spec.read(split, data_dir))
            results.append({"corpus": spec.name, "split": split, **rep})
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=1))
        return 0
    print(f"{'corpus':16} {'split':6} {'docs':>6} {'aligned':>8}  {'P docs':>8} {'P ents':>8} "
          f"{'S docs':>8} {'S ents':>8}  crossing P/S")
    for r in results:
        print(f"{r['corpus']:16} {r['split']:6} {r['documents']:>6} {r['entities_aligned']:>8}  "
              f"{100 * r['P']['document_share']:>7.2f}% {100 * r['P']['entity_share']:>7.2f}% "
              f"{100 * r['S']['document_share']:>7.2f}% {100 * r['S']['entity_share']:>7.2f}%  "
              f"{r['P']['crossing_dropped']}/{r['S']['crossing_dropped']}")
    return 0


def _cmd_dump(args) -> int:
    spec = get_corpus(args.corpus_name)
    rep = ReadReport(spec.name, args.split_name)
    out = open(args.output, "w", encoding="utf-8", newline="\n") if args.output else sys.stdout
    try:
        for d in spec.read(args.split_name, args.data_dir, rep):
            out.write(d.to_jsonl_line() + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"{spec.name}/{args.split_name}: {rep.mentions} mentions, {rep.repaired} repaired, "
          f"{rep.dropped} dropped", file=sys.stderr)
    return 0


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("data", help="read the training corpora: list, stats, words, dump",
                              description="Read the NER corpora in their original formats.")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION")

    def common(sp, select=True):
        sp.add_argument("--data-dir", default=None,
                        help="the corpora folder (default: $BIOTAG_DATA_DIR or ../shared/data)")
        sp.add_argument("--json", action="store_true", help="print JSON")
        if select:
            sp.add_argument("--corpus", nargs="+", action="extend", metavar="NAME",
                            help="only these corpora (default: all)")
            sp.add_argument("--split", nargs="+", action="extend", metavar="SPLIT",
                            help="only these splits")

    sp = sub.add_parser("list", help="the registered corpora")
    common(sp, select=False)
    sp.set_defaults(func=_cmd_list)
    sp = sub.add_parser("stats", help="units, mentions, types, nested/crossing pairs, repairs")
    common(sp)
    sp.add_argument("--examples", action="store_true", help="show repair/drop examples")
    sp.set_defaults(func=_cmd_stats)
    sp = sub.add_parser("words", help="share of entity boundaries on word boundaries")
    common(sp)
    sp.add_argument("--examples", type=int, default=3, metavar="N",
                    help="examples per cause (default 3; 0: none)")
    sp.set_defaults(func=_cmd_words)
    sp = sub.add_parser("codec", help="share of documents/entities that round-trip the tag codec")
    common(sp)
    sp.set_defaults(func=_cmd_codec)
    sp = sub.add_parser("dump", help="write one corpus split as canonical JSONL")
    sp.add_argument("corpus_name", metavar="CORPUS")
    sp.add_argument("split_name", metavar="SPLIT")
    sp.add_argument("--data-dir", default=None)
    sp.add_argument("-o", "--output", default=None, help="output file (default: stdout)")
    sp.set_defaults(func=_cmd_dump)

    def _help(_args) -> int:
        p.print_help()
        return 2
    p.set_defaults(func=_help)
