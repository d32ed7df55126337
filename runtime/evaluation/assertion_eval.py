"""Measure the assertion rules on gold entities (`biotag eval-assertion`).

Gold spans are given, so only the assertion is measured: per class precision, recall and F1
(percentages), accuracy, and the confusion counts.

Gold sources:

* ``maccrobat2020``: brat folders ``extra/maccrobat2020/<split>``. Polarity is an attribute of
  events (``A1<TAB>POLARITY E5 NEG``; ``E5<TAB>Sign_symptom:T11``): the gold entities are the
  event triggers; ``NEG`` is ``negated``; ``UNCERTAIN``, ``MAYBE_POS`` and ``MAYBE_NEG`` are
  ``possible``; the rest ``present``.
* ``chia``: brat folders ``extra/chia/<split>``. A ``Negation`` entity is linked to what it
  negates by ``Has_negation Arg1:<entity or Scope> Arg2:<Negation>``: the gold entities are the
  concepts (Condition, Drug, Observation, Measurement, Procedure, Device, Visit), ``negated``
  when they are Arg1 or lie inside a negated Scope.
* a canonical JSONL file whose entities carry ``assertion`` (absent = present).
"""
from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

from ..document import ASSERTIONS, PRESENT, Document, Entity
from ..errors import InputError
from ..formats import brat
from ..textio import read_text

CORPORA = ("maccrobat2020", "chia")
MACCROBAT_POLARITY = {"NEG": "negated", "UNCERTAIN": "possible", "MAYBE_POS": "possible",
                      "MAYBE_NEG": "possible"}
CHIA_CONCEPTS = ("Condition", "Drug", "Observation", "Measurement", "Procedure", "Device", "Visit")


def _data_dir(data_dir=None) -> Path:
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get("BIOTAG_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _corpus_dir(name: str, split: str, data_dir=None) -> Path:
    root = _data_dir(data_dir)
    for p in (root / "extra" / name / split, root / name / split):
        if p.is_dir():
            return p
    raise InputError(f"{name} {split}: no folder {root / 'extra' / name / split} "
                     f"(pass --data-dir or set BIOTAG_DATA_DIR)")


def _lines(ann: str) -> list[list[str]]:
    return [line.rstrip("\r").split("\t") for line in ann.split("\n") if line.strip()]


def _brat_docs(folder: Path):
    """(doc id, text, {T id: Entity}, ann lines) of every document of a brat folder."""
    for txt in sorted(folder.glob("*.txt")):
        text = read_text(txt, allow_empty=True)
        ann_path = txt.with_suffix(".ann")
        ann = read_text(ann_path, allow_empty=True) if ann_path.exists() else ""
        # attributes and relations are read here; brat.parse_ann gives the T lines, in file order
        # (their text column is left out: a few corpus lines list fragments out of order)
        lines = _lines(ann)
        tlines = [p[:2] for p in lines if p[0].startswith("T")]
        ents = brat.parse_ann(text, "\n".join("\t".join(p) for p in tlines), txt.stem, ann_path)
        yield txt.stem, text, dict(zip([p[0] for p in tlines], ents)), lines


def maccrobat_gold(folder: str | os.PathLike) -> list[Document]:
    docs = []
    for doc_id, text, ts, lines in _brat_docs(Path(folder)):
        trigger_of: dict[str, str] = {}
        polarity: dict[str, str] = {}
        for p in lines:
            if p[0].startswith("E") and len(p) > 1 and p[1].split():
                head = p[1].split()[0]
                if ":" in head:
                    trigger_of[p[0]] = head.split(":", 1)[1]
            elif p[0].startswith("A") and len(p) > 1:
                h = p[1].split()
                if len(h) >= 3 and h[0] == "POLARITY":
                    polarity[h[1]] = h[2]
        status: dict[str, str] = {}
        for eid, tid in trigger_of.items():
            if tid not in ts:
                continue
            a = MACCROBAT_POLARITY.get(polarity.get(eid, ""), PRESENT)
            if status.get(tid, PRESENT) == PRESENT:
                status[tid] = a
        ents = [ts[t].with_(assertion=a, meta={}) for t, a in status.items()]
        docs.append(Document(doc_id, text, ents, "en"))
    return docs


def chia_gold(folder: str | os.PathLike) -> list[Document]:
    docs = []
    for doc_id, text, ts, lines in _brat_docs(Path(folder)):
        negated_args = set()
        for p in lines:
            if p[0].startswith("R") and len(p) > 1:
                h = p[1].split()
                if h and h[0] == "Has_negation":
                    args = dict(x.split(":", 1) for x in h[1:] if ":" in x)
                    if "Arg1" in args:
                        negated_args.add(args["Arg1"])
        scopes = [ts[t].span for t in negated_args if t in ts and ts[t].type == "Scope"]
        ents = []
        seen = set()
        for tid, e in ts.items():
            if e.type not in CHIA_CONCEPTS or e.key in seen:
                continue
            seen.add(e.key)
            neg = tid in negated_args or any(a <= e.start and e.end <= b for a, b in scopes)
            ents.append(e.with_(assertion="negated" if neg else PRESENT, meta={}))
        docs.append(Document(doc_id, text, ents, "en"))
    return docs


def load_gold(source: str, split: str = "dev", data_dir=None) -> list[Document]:
    if source == "maccrobat2020":
        return maccrobat_gold(_corpus_dir(source, split, data_dir))
    if source == "chia":
        return chia_gold(_corpus_dir(source, split, data_dir))
    p = Path(source)
    if p.is_file():
        from ..formats import read_documents

        return read_documents(p)
    raise InputError(f"{source}: expected one of {', '.join(CORPORA)} or a JSONL file")


# -- scoring -------------------------------------------------------------------------------------
def score(gold: Sequence[Document], rules=None, predict=None) -> dict:
    """Per-class P/R/F1 of the predicted assertions of the gold entities. ``predict(text,
    spans) -> list[str]`` defaults to the rule engine."""
    from .. import assertion

    if predict is None:
        def predict(text, spans):
            return assertion.assertions(text, spans, rules)
    confusion: Counter = Counter()
    for d in gold:
        ents = list(d.entities)
        pred = predict(d.text, [e.span for e in ents])
        for e, p in zip(ents, pred):
            confusion[(e.assertion, p)] += 1
    total = sum(confusion.values())
    out = {"entities": total, "classes": {}}
    for c in ASSERTIONS:
        tp = confusion[(c, c)]
        n_gold = sum(v for (g, _), v in confusion.items() if g == c)
        n_pred = sum(v for (_, p), v in confusion.items() if p == c)
        if not n_gold and not n_pred:
            continue
        pr = 100.0 * tp / n_pred if n_pred else 0.0
        rc = 100.0 * tp / n_gold if n_gold else 0.0
        f1 = 2 * pr * rc / (pr + rc) if pr + rc else 0.0
        out["classes"][c] = {"gold": n_gold, "predicted": n_pred, "tp": tp,
                             "precision": round(pr, 2), "recall": round(rc, 2), "f1": round(f1, 2)}
    correct = sum(v for (g, p), v in confusion.items() if g == p)
    out["accuracy"] = round(100.0 * correct / total, 2) if total else 0.0
    out["confusion"] = {f"{g}->{p}": v for (g, p), v in sorted(confusion.items())}
    return out


def errors(gold: Sequence[Document], rules=None, width: int = 60) -> Iterable[str]:
    """One line per wrongly asserted gold entity, with its context (for tuning on dev)."""
    from .. import assertion

    for d in gold:
        ents = list(d.entities)
        for e, (p, cue) in zip(ents, assertion.find(d.text, [e.span for e in ents], rules)):
            if p != e.assertion:
                left = d.text[max(0, e.start - width):e.start].replace("\n", " | ")
                right = d.text[e.end:e.end + width // 2].replace("\n", " | ")
                why = f" <{d.text[cue.start:cue.end]}>" if cue else ""
                yield f"{e.assertion:>10} {p:>10}{why}\t{left}[[{e.text}]]{right}"


def format_table(results: dict) -> str:
    """Markdown rows of the classes other than present that the gold data has."""
    rows = ["| corpus | split | class | gold | P | R | F1 |", "|---|---|---|---|---|---|---|"]
    for (corpus, split), r in results.items():
        for c, m in r["classes"].items():
            if c == PRESENT or not m["gold"]:
                continue
            rows.append(f"| {corpus} | {split} | {c} | {m['gold']} | {m['precision']:.1f} | "
                        f"{m['recall']:.1f} | {m['f1']:.1f} |")
    return "\n".join(rows)


def add_cli(sub) -> None:
    p = sub.add_parser("eval-assertion", help="measure the assertion rules on gold entities",
                       description="Precision, recall and F1 of each assertion class on gold "
                                   "entities (MACCROBAT2020, CHIA, or a JSONL file with assertions).")
    p.add_argument("sources", nargs="*", default=list(CORPORA),
                   help=f"corpora ({', '.join(CORPORA)}) or JSONL files (default: both corpora)")
    p.add_argument("--split", action="append", choices=("train", "dev", "test"),
                   help="split(s) of the corpora (repeatable; default dev)")
    p.add_argument("--data-dir", help="the corpora folder (default: $BIOTAG_DATA_DIR or ../shared/data)")
    p.add_argument("--triggers", action="append", default=[], metavar="TSV",
                   help="extra trigger file (repeatable)")
    p.add_argument("--errors", type=int, default=0, metavar="N",
                   help="also print up to N wrongly asserted entities with their context")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from .. import assertion

    rules = assertion.load_rules(args.triggers) if args.triggers else assertion.default_rules()
    results = {}
    shown = 0
    for src in args.sources:
        splits = (args.split or ["dev"]) if src in CORPORA else ["-"]
        for split in splits:
            gold = load_gold(src, split, args.data_dir)
            results[(src if src in CORPORA else Path(src).name, split)] = score(gold, rules)
            for line in errors(gold, rules):
                if shown >= args.errors:
                    break
                print(line)
                shown += 1
    if args.json:
        print(json.dumps({f"{c}/{s}": r for (c, s), r in results.items()}, indent=1))
    else:
        print(f"assertion rules {rules.version}")
        print(format_table(results))
    return 0


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m biotag.runtime.evaluation.assertion_eval")
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["eval-assertion", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
