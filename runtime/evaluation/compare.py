"""Compare two models on the same documents (`biotag compare A_DIR B_DIR --corpus ...`).

Each folder holds the predictions ``biotag eval-model --pred-dir`` writes (``CORPUS.SPLIT.jsonl``),
made on the same documents (the same ``--sample`` and ``--seed``). Per corpus: both F1 scores, B
minus A with a 95% paired-bootstrap interval over the documents; over all corpora: the mean
difference (every corpus weighs the same) with its interval from resampling every corpus at once.

B *beats* A when the interval of the mean difference lies above 0 and no corpus is significantly
worse (no corpus whose interval lies below 0): the rule a new model must pass to replace the
default bundle. The exit code is 0 either way; ``--json`` gives the numbers and the verdict.

``--profile-types`` scores both folders the way ``eval-model --profile`` scores: gold and
predictions typed as the language's profile instruction names the corpus's types (jnlpba's and
genia's protein, DNA and RNA become Gene), other types dropped. It compares a profile pass with a
corpus's own instruction on equal terms.

``--misses`` adds, for both folders, what became of each gold entity: found (same span and type),
found with another type (which types), overlapped by a predicted span with other boundaries, or
not tagged at all (no predicted span touches it).
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError


def verdict(result: dict) -> dict:
    """{"beats": bool, "worse": [corpora significantly worse in B]} of a ``paired_bootstrap_mean`` result."""
    worse = [c for c, r in result["corpora"].items() if r["high"] < 0]
    return {"beats": result["mean"]["low"] > 0 and not worse, "worse": worse}


def miss_reasons(gold: list, pred: list) -> dict:
    """What became of each gold entity of ``gold`` in ``pred`` (documents matched by id): counts of
    found, wrong type ("Gold->Predicted" pairs), other boundaries (a predicted span overlaps it,
    none has its offsets) and not tagged."""
    from collections import Counter

    by_id = {d.id: d for d in pred}
    out = {"gold": 0, "found": 0, "boundary": 0, "not_tagged": 0}
    wrong: Counter = Counter()
    for g in gold:
        p = by_id.get(g.id)
        spans = [(e.start, e.end, e.type) for e in (p.entities if p is not None else [])]
        keys = set(spans)
        for e in g.entities:
            out["gold"] += 1
            if (e.start, e.end, e.type) in keys:
                out["found"] += 1
                continue
            other = sorted({t for a, b, t in spans if a == e.start and b == e.end})
            if other:
                wrong[f"{e.type}->{other[0]}"] += 1
            elif any(a < e.end and e.start < b for a, b, _ in spans):
                out["boundary"] += 1
            else:
                out["not_tagged"] += 1
    out["wrong_type"] = dict(wrong.most_common())
    return out


def compare(dir_a: Path, dir_b: Path, corpora: list[str], split: str = "dev", rounds: int = 1000,
            seed: int = 0, data_dir=None, profile_types: bool = False, misses: bool = False) -> dict:
    """The paired comparison of the predictions in two ``--pred-dir`` folders (see the module)."""
    from .scoring import paired_bootstrap_mean
    from .selector_eval import gold_docs, load_pred_file

    sets, missed = {}, {}
    for corpus in corpora:
        preds = []
        for folder in (dir_a, dir_b):
            f = Path(folder) / f"{corpus}.{split}.jsonl"
            if not f.is_file():
                raise InputError(f"{f}: no predictions (write them with 'biotag eval-model --corpus {corpus} "
                                 f"--split {split} --pred-dir {folder}')")
            preds.append(load_pred_file(f)[2])
        ids_a = [d.id for d in preds[0]]
        only_one = set(ids_a) ^ {d.id for d in preds[1]}
        if only_one:
            raise InputError(f"{corpus}/{split}: the two folders hold predictions for different documents "
                             f"({len(preds[0])} and {len(preds[1])}, {len(only_one)} not in both); "
                             f"evaluate both with the same --sample and --seed")
        gold = gold_docs(corpus, split, ids_a, data_dir)
        raw = preds
        if profile_types:
            gold, preds = _profile_typed(corpus, gold, preds)
            raw = [_profile_named(p) for p in raw]
        sets[corpus] = (gold, preds[0], preds[1])
        if misses:   # every predicted type kept: a gold entity tagged with another type shows as such
            missed[corpus] = {"a": miss_reasons(gold, raw[0]), "b": miss_reasons(gold, raw[1])}
    result = paired_bootstrap_mean(sets, rounds=rounds, seed=seed)
    result.update(split=split, a=str(dir_a), b=str(dir_b), profile_types=profile_types, **verdict(result))
    if misses:
        result["misses"] = missed
    return result


def _profile_typed(corpus: str, gold: list, preds: list) -> tuple[list, list]:
    """Gold and both prediction lists (in gold's document order) typed as ``--profile`` scores them."""
    from ..prompting import Task
    from .model_eval import profile_scoring

    task = Task.for_corpus(corpus.replace("-pubtator", ""))

    def in_gold_order(pred: list) -> list:
        by_id = {d.id: d for d in pred}
        return [by_id[g.id] for g in gold]

    gold_typed, a = profile_scoring(gold, in_gold_order(preds[0]), task)
    b = profile_scoring(gold, in_gold_order(preds[1]), task)[1]
    return gold_typed, [a, b]


def _profile_named(pred: list) -> list:
    """Predictions with every type named as the language's profile names it (Protein, DNA and RNA
    as Gene), none dropped."""
    from ..profiles import profile_for, to_profile

    out = []
    for p in pred:
        prof = profile_for(p.lang or "en")
        out.append(p.copy([e.with_(type=to_profile(prof, e.type) or e.type) for e in p.entities]))
    return out


def format_table(result: dict) -> str:
    """A markdown table: one row per corpus and the mean, then the verdict."""
    lines = ["| corpus | documents | F1 A | F1 B | B - A [95% interval] |", "|---|---|---|---|---|"]
    for c, r in result["corpora"].items():
        lines.append(f"| {c} | {r['documents']} | {r['f1_a']:.2f} | {r['f1_b']:.2f} | "
                     f"{r['delta']:+.2f} [{r['low']:+.2f}, {r['high']:+.2f}] |")
    m = result["mean"]
    lines.append(f"| **mean** | | {m['f1_a']:.2f} | {m['f1_b']:.2f} | "
                 f"**{m['delta']:+.2f} [{m['low']:+.2f}, {m['high']:+.2f}]** |")
    if result["beats"]:
        why = "B beats A: the mean gain's interval lies above 0 and no corpus is significantly worse."
    elif result["worse"]:
        why = f"B does not beat A: significantly worse on {', '.join(result['worse'])}."
    else:
        why = "B does not beat A: the mean gain's interval does not lie above 0."
    return "\n".join(lines) + f"\n\n{why} ({result['rounds']} paired resamples, seed {result['seed']})\n"


def format_misses(result: dict) -> str:
    """A markdown table of ``result["misses"]``: per corpus and folder, the share of gold entities
    found, found with another type (the most frequent pairs), with other boundaries, not tagged."""
    lines = ["| corpus | folder | gold | found | other type (most frequent) | other boundaries | not tagged |",
             "|---|---|---|---|---|---|---|"]
    tot = {"a": {}, "b": {}}
    for c, both in result["misses"].items():
        for side in ("a", "b"):
            m = both[side]
            for k in ("gold", "found", "boundary", "not_tagged"):
                tot[side][k] = tot[side].get(k, 0) + m[k]
            tot[side]["wrong"] = tot[side].get("wrong", 0) + sum(m["wrong_type"].values())
            n = max(m["gold"], 1)
            top = ", ".join(f"{k} {v}" for k, v in list(m["wrong_type"].items())[:2])
            lines.append(f"| {c} | {side.upper()} | {m['gold']} | {100 * m['found'] / n:.1f}% | "
                         f"{100 * sum(m['wrong_type'].values()) / n:.1f}%{' (' + top + ')' if top else ''} | "
                         f"{100 * m['boundary'] / n:.1f}% | {100 * m['not_tagged'] / n:.1f}% |")
    for side in ("a", "b"):
        t, n = tot[side], max(tot[side].get("gold", 0), 1)
        lines.append(f"| **all** | {side.upper()} | {t.get('gold', 0)} | {100 * t.get('found', 0) / n:.1f}% | "
                     f"{100 * t.get('wrong', 0) / n:.1f}% | {100 * t.get('boundary', 0) / n:.1f}% | "
                     f"{100 * t.get('not_tagged', 0) / n:.1f}% |")
    return "\n".join(lines) + "\n"


def _run(args) -> int:
    result = compare(args.a, args.b, args.corpus, args.split, args.rounds, args.seed, args.data_dir,
                     args.profile_types, args.misses)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(format_table(result).rstrip("\n"))
        if args.misses:
            print("\n" + format_misses(result).rstrip("\n"))
    return 0


def add_cli(subparsers) -> None:
    from .scoring import _non_negative

    p = subparsers.add_parser(
        "compare", help="compare two models' predictions on the same documents (paired bootstrap)",
        description="Compare two folders of 'biotag eval-model --pred-dir' predictions made on the same "
                    "documents: F1 per corpus, B minus A with a 95%% paired-bootstrap interval, the mean "
                    "difference over the corpora with its interval, and whether B beats A (the mean's "
                    "interval above 0, no corpus significantly worse).")
    p.add_argument("a", type=Path, metavar="A_DIR", help="predictions of the model to beat")
    p.add_argument("b", type=Path, metavar="B_DIR", help="predictions of the new model")
    p.add_argument("--corpus", nargs="+", required=True, help="corpora to compare (CORPUS.SPLIT.jsonl in both folders)")
    p.add_argument("--split", default="dev")
    p.add_argument("--rounds", type=_non_negative, default=1000, help="bootstrap resamples (default: 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", type=Path, default=None, help="the corpora (default: ../shared/data)")
    p.add_argument("--profile-types", action="store_true",
                   help="score both folders as 'eval-model --profile' scores (the profile's types: "
                        "protein, DNA and RNA as Gene), to compare a profile pass with a corpus's own instruction")
    p.add_argument("--misses", action="store_true",
                   help="also say, for both folders, what became of the gold entities: found, other type, "
                        "other boundaries, not tagged")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_run)
