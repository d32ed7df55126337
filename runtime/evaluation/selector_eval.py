"""End-to-end evaluation of the entity selector on the tagging LLM's own candidates.

    biotag eval-selector --selector DIR --pred runs/sel/dev/*.dev.jsonl --tune thresholds.json
    biotag eval-selector --selector DIR --pred runs/sel/test/*.test.jsonl --thresholds thresholds.json

``--pred`` files are what ``biotag eval-model --pred-dir`` writes (``{corpus}.{split}.jsonl``: the
documents of a corpus split with the LLM's predicted entities). Gold comes from the corpus itself
(documents matched by id, restricted to the corpus's entity types). Each candidate is scored by the
ONNX selector; a candidate is kept when its score reaches its type's threshold.

Thresholds (``--tune``) are chosen per entity type on these candidates to maximise the *end-to-end*
F1 (recall counts every gold entity, also those the LLM missed), with "keep everything" (threshold
0) as a choice, so a type where filtering does not help on dev keeps all its candidates.
"""
from __future__ import annotations

import json
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

from ..document import Document
from ..errors import InputError

PRED_NAME = re.compile(r"^(?P<corpus>[\w.-]+?)\.(?P<split>train|dev|test)\.jsonl$")


def load_pred_file(path: Path) -> tuple[str, str, list[Document]]:
    m = PRED_NAME.match(path.name)
    if not m:
        raise InputError(f"{path}: expected a file named CORPUS.SPLIT.jsonl (as 'biotag eval-model --pred-dir' writes)")
    with open(path, encoding="utf-8") as f:
        docs = [Document.from_json(json.loads(line)) for line in f if line.strip()]
    return m["corpus"], m["split"], docs


def gold_docs(corpus: str, split: str, ids: list[str], data_dir=None) -> list[Document]:
    from .. import corpora
    from .model_eval import gold_for
    from ..prompting import Task

    by_id = {d.id: d for d in corpora.load(corpus, split, data_dir)}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise InputError(f"{corpus}/{split}: {len(missing)} predicted document(s) not in the corpus "
                         f"(first: {missing[0]!r})")
    task = Task.for_corpus(corpus.replace("-pubtator", ""), "S")
    return gold_for([by_id[i] for i in ids], task)


def llm_confidence(e) -> float | None:
    """The tagging LLM's own confidence in a predicted span: its ``score`` in predictions made
    without the selector, its ``meta["llm_score"]`` in predictions that went through the selector
    (where ``score`` is already the fused score the bundle's thresholds were compared with)."""
    return e.meta["llm_score"] if "llm_score" in e.meta else e.score


def score_candidates(selector, docs: list[Document], fusion: str = "selector") -> list[list[float]]:
    """Per document, the score each candidate's threshold is compared with (see ``selector.fuse``),
    from this selector's probability and the LLM's confidence (``llm_confidence``)."""
    from ..selector import fuse

    return [[fuse(s, llm_confidence(e), fusion) for s, e in zip(selector.score(d.text, d.entities), d.entities)]
            if d.entities else [] for d in docs]


def prf(tp: int, n_pred: int, n_gold: int) -> dict:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(100 * p, 2), "recall": round(100 * r, 2), "f1": round(100 * f, 2),
            "tp": tp, "pred": n_pred, "gold": n_gold}


def filtered(docs: list[Document], scores: list[list[float]], thresholds: dict[str, float],
             task: str | None = None) -> list[Document]:
    """Candidates at or above their threshold: ``task/type`` (the instruction that produced them),
    else ``type``, else ``*`` (as the runtime Tagger looks them up)."""
    from ..tagger import threshold_for

    out = []
    for d, ss in zip(docs, scores):
        keep = [e.with_(score=round(s, 4)) for e, s in zip(d.entities, ss)
                if s >= threshold_for(thresholds, e.type, task, 0.0)]
        out.append(d.copy(keep))
    return out


def micro(gold: list[Document], pred: list[Document]) -> dict:
    """Strict micro P/R/F1 (percent, to 2 decimals) with counts, as ``biotag eval`` computes it."""
    from .scoring import evaluate

    m = evaluate(gold, pred)["micro"]
    return {**m, **{k: round(m[k], 2) for k in ("precision", "recall", "f1")}}


def load_pred_files(paths, data_dir=None) -> list[tuple[str, str, list[Document], list[Document]]]:
    """(corpus, split, gold, pred) for each ``CORPUS.SPLIT.jsonl`` prediction file."""
    out = []
    for path in paths:
        corpus, split, pred = load_pred_file(Path(path))
        out.append((corpus, split, gold_docs(corpus, split, [d.id for d in pred], data_dir), pred))
    return out


def tune_thresholds(items: list[tuple[list[Document], list[Document], list[list[float]]]],
                    min_gain: float = 0.0, tasks: list[str] | None = None,
                    min_support: int = 0) -> tuple[dict[str, float], dict]:
    """The threshold maximising end-to-end F1, per type over all given corpora (key ``type``) and,
    when ``tasks`` names the corpus (instruction) of each item, per corpus and type (key
    ``corpus/type``, what the runtime uses for candidates of that instruction). ``items``: (gold,
    pred, scores) per corpus. Threshold 0 (keep all) wins ties and any gain of at most ``min_gain``.
    A key with fewer than ``min_support`` dev candidates is not tuned: a ``corpus/type`` key is left
    out (the runtime falls back to the type's threshold), a ``type`` key keeps everything (0)."""
    cands: dict[str, list[tuple[float, int]]] = defaultdict(list)
    n_gold: dict[str, int] = defaultdict(int)
    for i, (gold, pred, scores) in enumerate(items):
        keys = (lambda t: (t,)) if not tasks else (lambda t, c=tasks[i]: (t, f"{c}/{t}"))
        for g, p, ss in zip(gold, pred, scores):
            gk = {e.key for e in g.entities}
            for e in g.entities:
                for k in keys(e.type):
                    n_gold[k] += 1
            for e, s in zip(p.entities, ss):
                for k in keys(e.type):
                    cands[k].append((s, int(e.key in gk)))
    thresholds, report = {}, {}
    for t in sorted(set(cands) | set(n_gold)):
        cs = sorted(cands.get(t, []), key=lambda x: -x[0])
        G = n_gold.get(t, 0)
        tp_all = sum(y for _, y in cs)
        base = prf(tp_all, len(cs), G)
        if len(cs) < min_support:
            report[t] = {"threshold": None if "/" in t else 0.0, "candidates": len(cs), "gold": G,
                         "f1_without": base["f1"], "f1_with": base["f1"], "untuned": "too few candidates"}
            if "/" not in t:
                thresholds[t] = 0.0
            continue
        best_f, best_t, tp = base["f1"], 0.0, 0
        for k, (s, y) in enumerate(cs):      # keep the k+1 highest-scoring candidates
            tp += y
            if k + 1 < len(cs) and cs[k + 1][0] == s:
                continue
            f = prf(tp, k + 1, G)["f1"]
            if f > best_f + min_gain:
                best_f, best_t = f, s
        thresholds[t] = round(best_t, 6)
        kept = [(s, y) for s, y in cs if s >= best_t]
        report[t] = {"threshold": thresholds[t], "candidates": len(cs), "gold": G,
                     "f1_without": base["f1"], "f1_with": prf(sum(y for _, y in kept), len(kept), G)["f1"]}
    return thresholds, report


def cross_validate_rule(items, tasks: list[str], grid: list[tuple[int, float]], folds: int = 2,
                        seed: int = 0) -> list[dict]:
    """Choose the tuning rule (min_support, min_gain) on dev alone: split each corpus's dev documents
    into ``folds`` parts, tune on the others, measure the F1 change on the held-out part.
    Returns one row per rule: mean and worst held-out delta over corpora (averaged over folds)."""
    import random

    def take(item, idx):
        return tuple([xs[i] for i in idx] for xs in item)

    train_sets, held_sets = [], []   # per fold: the tuning items, and (held-out item, F1 without)
    for f in range(folds):
        train_sets.append([]), held_sets.append([])
        for item in items:
            idx = list(range(len(item[0])))
            random.Random(seed).shuffle(idx)
            held = sorted(idx[f::folds])
            train_sets[f].append(take(item, sorted(set(idx) - set(held))))
            g, p, sc = take(item, held)
            held_sets[f].append((g, p, sc, micro(g, p)["f1"]))
    rows = []
    for min_support, min_gain in grid:
        per = [0.0] * len(items)
        for f in range(folds):
            thr, _ = tune_thresholds(train_sets[f], min_gain, tasks, min_support)
            for c, (g, p, sc, base) in enumerate(held_sets[f]):
                per[c] += (micro(g, filtered(p, sc, thr, tasks[c]))["f1"] - base) / folds
        rows.append({"min_support": min_support, "min_gain": min_gain,
                     "mean_delta_f1": round(sum(per) / len(per), 2), "worst_delta_f1": round(min(per), 2),
                     "per_corpus": {t: round(d, 2) for t, d in zip(tasks, per)}})
    return rows


def write_pred_file(path: Path, pred: list[Document], kept: list[Document], thresholds: dict[str, float],
                    task: str | None = None) -> None:
    """The candidates this selector keeps, in ``eval-model --pred-dir``'s format (so ``biotag
    compare`` pairs them with other predictions): ``score`` is the fused score, ``meta`` holds the
    LLM's confidence (``llm_score``) and the threshold applied; a ``selector_score`` of the input,
    another selector's, is dropped."""
    from ..tagger import threshold_for

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for p, k in zip(pred, kept):
            llm = {e.key: llm_confidence(e) for e in p.entities}   # kept entities carry the fused score
            ents = [e.with_(meta={**{m: v for m, v in e.meta.items() if m != "selector_score"},
                                  "llm_score": llm[e.key],
                                  "threshold": threshold_for(thresholds, e.type, task, 0.0)})
                    for e in k.entities]
            f.write(k.copy(ents).to_jsonl_line() + "\n")


def load_selector(args):
    from ..selector import Selector

    d = Path(args.selector)
    if not (d / "selector.json").is_file():
        raise InputError(f"{d}: not an exported selector folder (no selector.json)")
    cfg = json.loads((d / "selector.json").read_text(encoding="utf-8"))
    onnx = d / (args.onnx or cfg["file"])
    return Selector(onnx, d / cfg["tokenizer"], {k: v for k, v in cfg.items() if k != "sha256"},
                    device="cpu", threads=args.threads, batch_size=64)


def _run(args) -> int:
    sel = load_selector(args)
    items, rows = [], []
    t0 = time.time()
    n_cands = 0
    for corpus, split, gold, pred in load_pred_files(args.pred, args.data_dir):
        scores = score_candidates(sel, pred, args.fusion)
        n_cands += sum(len(s) for s in scores)
        items.append((gold, pred, scores))
        rows.append((corpus, split))
    score_s = time.time() - t0
    result: dict = {"selector": str(sel.onnx_path), "fusion": args.fusion, "candidates": n_cands, "scoring_s": round(score_s, 1),
                    "ms_per_candidate": round(1000 * score_s / max(1, n_cands), 2)}
    if args.cv_rule:
        grid = [(int(a), float(b)) for a, b in (x.split(":") for x in args.cv_rule)]
        result["cv"] = cross_validate_rule(items, [c for c, _ in rows], grid)
        if not args.json:
            print(f"{'min_support':>11} {'min_gain':>8} {'mean':>7} {'worst':>7}  (held-out dev halves)")
            for r in result["cv"]:
                print(f"{r['min_support']:11d} {r['min_gain']:8.2f} {r['mean_delta_f1']:+7.2f} {r['worst_delta_f1']:+7.2f}")
    if args.tune:
        thresholds, report = tune_thresholds(items, args.min_gain, [c for c, _ in rows], args.min_support)
        thresholds["*"] = 0.0
        Path(args.tune).write_text(json.dumps({"thresholds": thresholds, "per_type": report,
                                               "rule": {"min_support": args.min_support, "min_gain": args.min_gain},
                                               "fusion": args.fusion,
                                               "tuned_on": [f"{c}/{s}" for c, s in rows]}, indent=1) + "\n",
                                   encoding="utf-8")
        result["tuned"] = report
    elif args.thresholds:
        tuned = json.loads(Path(args.thresholds).read_text(encoding="utf-8"))
        if tuned.get("fusion", "selector") != args.fusion:
            raise InputError(f"{args.thresholds} was tuned with --fusion {tuned.get('fusion', 'selector')}; "
                             f"pass the same --fusion (now {args.fusion})")
        thresholds = tuned["thresholds"]
    else:
        thresholds = {"*": args.threshold}
    result["thresholds"] = thresholds
    per = []
    for (corpus, split), (gold, pred, scores) in zip(rows, items):
        without = micro(gold, pred)
        kept = filtered(pred, scores, thresholds, corpus)
        with_ = micro(gold, kept)
        if args.pred_dir:
            write_pred_file(Path(args.pred_dir) / f"{corpus}.{split}.jsonl", pred, kept, thresholds, corpus)
        per.append({"corpus": corpus, "split": split, "documents": len(gold), "without": without,
                    "with": with_, "delta_f1": round(with_["f1"] - without["f1"], 2)})
    result["corpora"] = per
    if per:
        result["mean_delta_f1"] = round(sum(r["delta_f1"] for r in per) / len(per), 2)
        result["worst_delta_f1"] = min(r["delta_f1"] for r in per)
    if args.json:
        print(json.dumps(result, indent=1, ensure_ascii=False))
        return 0
    print(f"{'corpus':14} {'split':5} {'docs':>5}  {'F1 without':>10} {'F1 with':>8} {'delta':>6}   P/R with")
    for r in per:
        w = r["with"]
        print(f"{r['corpus']:14} {r['split']:5} {r['documents']:5}  {r['without']['f1']:10.2f} {w['f1']:8.2f} "
              f"{r['delta_f1']:+6.2f}   {w['precision']:.1f}/{w['recall']:.1f}")
    if per:
        print(f"mean delta F1 {result['mean_delta_f1']:+.2f}, worst {result['worst_delta_f1']:+.2f}; "
              f"{n_cands} candidates, {result['ms_per_candidate']} ms/candidate")
    return 0


def add_cli(sub) -> None:
    p = sub.add_parser("eval-selector", help="evaluate the selector on the LLM's predictions (and tune thresholds)")
    p.add_argument("--selector", required=True, help="exported selector folder (selector.json, ONNX, tokenizer)")
    p.add_argument("--onnx", help="ONNX file in that folder to use instead of selector.json's (e.g. the fp32 one)")
    p.add_argument("--pred", nargs="+", required=True, help="CORPUS.SPLIT.jsonl files from 'biotag eval-model --pred-dir'")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--tune", metavar="OUT.json", help="choose per-type thresholds on these predictions, write them here")
    g.add_argument("--thresholds", metavar="FILE.json", help="thresholds written by --tune")
    g.add_argument("--threshold", type=float, default=0.5, help="one threshold for every type (default 0.5)")
    p.add_argument("--min-gain", type=float, default=0.0,
                   help="with --tune: keep everything unless filtering gains more than this many F1 points")
    p.add_argument("--cv-rule", nargs="+", metavar="SUPPORT:GAIN",
                   help="2-fold cross-validate tuning rules (min_support:min_gain) on these predictions")
    p.add_argument("--min-support", type=int, default=0,
                   help="with --tune: do not tune a type (or instruction/type) with fewer dev candidates")
    from ..selector import FUSIONS

    p.add_argument("--fusion", choices=tuple(FUSIONS), default="selector",
                   help="score compared with the thresholds: the selector's probability, or its geometric mean "
                        "with the LLM's confidence in the span (default: selector)")
    p.add_argument("--pred-dir", metavar="DIR",
                   help="write the candidates kept at the thresholds to DIR/CORPUS.SPLIT.jsonl "
                        "(for 'biotag compare')")
    p.add_argument("--data-dir")
    p.add_argument("--threads", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_run)
