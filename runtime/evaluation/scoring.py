"""Strict span evaluation of predicted entities against gold entities (`biotag eval`).

An entity counts as correct only when (start, end, type) match exactly (``Entity.key``).
Documents are matched by id: a gold document without a prediction counts as predicted empty,
a prediction whose id is not in the gold file is counted and ignored, and a document whose
text differs between gold and prediction is an error (its offsets cannot be compared).

Scores are percentages in [0, 100]; a ratio whose denominator is 0 is reported as 0.0.
Within a document entities are compared as sets of keys: a duplicated entity counts once.

The nested-entity breakdown splits gold entities into *nested* (the span contains, or lies
inside, another gold entity of the same document with a different span) and *flat* (the rest,
crossing overlaps included) and gives recall on each; predicted entities are split the same way
among the predictions of their document and get precision on each. Nestedness is decided on
the whole document, before any ``types`` filter.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..document import Document, Entity
from ..errors import FormatError, InputError
from ..textio import read_text

__all__ = ["evaluate", "paired_bootstrap", "paired_bootstrap_mean", "read_documents", "format_report", "prf", "add_cli"]

Key = tuple[int, int, str]


# -- reading ---------------------------------------------------------------------------------
def _check_offsets(obj, path, lineno: int) -> None:
    """Entity offsets must be whole numbers (as ``biotag convert`` requires): 7.9 is refused, not
    truncated to 7."""
    if not isinstance(obj, dict) or not isinstance(obj.get("entities"), list):
        return
    for k, e in enumerate(obj["entities"], 1):
        if not isinstance(e, dict):
            continue
        for key in ("start", "end"):
            v = e.get(key)
            whole = (isinstance(v, int) and not isinstance(v, bool)) or (
                isinstance(v, str) and v.strip().lstrip("-").isdigit() and v.strip().isascii())
            if key in e and not whole:
                raise FormatError(f"document {obj.get('id')!r}: entity #{k}: offsets must be integers, "
                                  f"got {key} {v!r}", path, lineno)


def read_documents(path) -> list[Document]:
    """Read canonical JSONL (one document object per line; blank lines are skipped).

    Raises InputError for a missing, empty or binary file and FormatError naming
    ``path:line`` for a line that is not a valid document.
    """
    text = read_text(path)
    docs = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise FormatError(f"not valid JSON ({exc.msg}, column {exc.colno})", path, lineno) from None
        _check_offsets(obj, path, lineno)
        try:
            docs.append(Document.from_json(obj))
        except KeyError as exc:
            raise FormatError(f"not a valid document: missing key {exc}", path, lineno) from None
        except (ValueError, TypeError, AttributeError) as exc:
            raise FormatError(f"not a valid document: {exc}", path, lineno) from None
    return docs


# -- scoring ---------------------------------------------------------------------------------
def _ratio(num: int, den: int) -> float:
    return 100.0 * num / den if den else 0.0


def prf(tp: int, fp: int, fn: int) -> dict:
    """Precision, recall and F1 (percentages) with their counts."""
    p = _ratio(tp, tp + fp)
    r = _ratio(tp, tp + fn)
    f = _ratio(2 * tp, 2 * tp + fp + fn)
    return {"precision": p, "recall": r, "f1": f, "tp": tp, "fp": fp, "fn": fn,
            "gold": tp + fn, "pred": tp + fp}


def _nested_spans(entities: Iterable[Entity]) -> set[tuple[int, int]]:
    """Spans that contain, or lie inside, another entity's (different) span."""
    es = sorted({(e.start, e.end) for e in entities}, key=lambda s: (s[0], -s[1]))
    out: set[tuple[int, int]] = set()
    for i, (a0, a1) in enumerate(es):
        for b0, b1 in es[i + 1:]:
            if b0 >= a1:
                break
            if b1 <= a1:  # sorted by start then longer first: b lies inside a
                out.add((a0, a1))
                out.add((b0, b1))
    return out


@dataclass
class _DocCounts:
    tp: int = 0
    fp: int = 0
    fn: int = 0


def _paired_docs(gold_by_id: dict[str, Document], pred_by_id: dict[str, Document]):
    """(gold document, its prediction or None) in gold order; a prediction whose text differs from
    the gold text is an error (its offsets cannot be compared)."""
    for doc_id, g in gold_by_id.items():
        p = pred_by_id.get(doc_id)
        if p is not None and p.text != g.text:
            at = _first_difference(g.text, p.text)
            raise InputError(
                f"document {doc_id!r}: the prediction's text differs from the gold text "
                f"(first difference at character {at}; lengths {len(g.text)} and {len(p.text)}), "
                f"so its offsets cannot be compared")
        yield g, p


def _first_difference(a: str, b: str) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def _index(docs: list[Document], what: str) -> dict[str, Document]:
    out: dict[str, Document] = {}
    for d in docs:
        if d.id in out:
            raise InputError(f"document id {d.id!r} appears more than once in the {what}")
        out[d.id] = d
    return out


def evaluate(gold: list[Document], pred: list[Document], bootstrap: int = 0, seed: int = 0,
             types: Iterable[str] | None = None) -> dict:
    """Score ``pred`` against ``gold`` with strict span matching; see the module docstring.

    ``types`` restricts scoring to those entity types (in gold and predictions alike).
    ``bootstrap`` > 0 adds a 95% percentile interval for micro F1 from that many resamples of
    the gold documents (with replacement; numpy RNG seeded with ``seed``).

    Returns a JSON-serialisable dict with keys ``documents``, ``micro``, ``per_type``,
    ``nested`` and ``bootstrap`` (None unless requested).
    """
    if bootstrap < 0:
        raise InputError("--bootstrap must be 0 or a positive number of rounds")
    keep = None if types is None else set(types)
    gold_by_id = _index(gold, "gold file")
    pred_by_id = _index(pred, "predictions")
    unknown = [i for i in pred_by_id if i not in gold_by_id]
    missing = [i for i in gold_by_id if i not in pred_by_id]

    type_counts: dict[str, list[int]] = {t: [0, 0, 0] for t in (keep or ())}
    # nested breakdown: [hits, total]
    nest = {"gold_nested": [0, 0], "gold_flat": [0, 0], "pred_nested": [0, 0], "pred_flat": [0, 0]}
    per_doc: list[_DocCounts] = []

    for g, p in _paired_docs(gold_by_id, pred_by_id):
        g_ents = list(g.entities)
        p_ents = list(p.entities) if p is not None else []
        g_nested = _nested_spans(g_ents)
        p_nested = _nested_spans(p_ents)
        g_keys = {e.key for e in g_ents if keep is None or e.type in keep}
        p_keys = {e.key for e in p_ents if keep is None or e.type in keep}
        hits = g_keys & p_keys
        c = _DocCounts(len(hits), len(p_keys - hits), len(g_keys - hits))
        per_doc.append(c)
        for k in g_keys:
            tc = type_counts.setdefault(k[2], [0, 0, 0])
            if k in hits:
                tc[0] += 1
            else:
                tc[2] += 1
            bucket = nest["gold_nested" if k[:2] in g_nested else "gold_flat"]
            bucket[0] += k in hits
            bucket[1] += 1
        for k in p_keys:
            if k not in hits:
                type_counts.setdefault(k[2], [0, 0, 0])[1] += 1
            bucket = nest["pred_nested" if k[:2] in p_nested else "pred_flat"]
            bucket[0] += k in hits
            bucket[1] += 1

    tp = sum(c.tp for c in per_doc)
    fp = sum(c.fp for c in per_doc)
    fn = sum(c.fn for c in per_doc)
    nested = {}
    for name, (hit, total) in nest.items():
        metric = "recall" if name.startswith("gold") else "precision"
        nested[name] = {metric: _ratio(hit, total), "correct": hit, "count": total}

    return {
        "documents": {
            "gold": len(gold_by_id),
            "pred": len(pred_by_id),
            "evaluated": len(per_doc),
            "missing_pred": len(missing),
            "missing_pred_ids": missing[:20],
            "unknown_pred": len(unknown),
            "unknown_pred_ids": unknown[:20],
        },
        "micro": prf(tp, fp, fn),
        "per_type": {t: prf(*type_counts[t]) for t in sorted(type_counts)},
        "nested": nested,
        "bootstrap": _bootstrap(per_doc, bootstrap, seed) if bootstrap else None,
    }


def _bootstrap(per_doc: list[_DocCounts], rounds: int, seed: int) -> dict:
    import numpy as np

    counts = np.array([[c.tp, c.fp, c.fn] for c in per_doc], dtype=np.int64).reshape(-1, 3)
    n = len(counts)
    rng = np.random.default_rng(seed)
    f1 = np.zeros(rounds, dtype=np.float64)
    if n:
        for r in range(rounds):
            tp, fp, fn = counts[rng.integers(0, n, size=n)].sum(axis=0)
            den = 2 * tp + fp + fn
            f1[r] = 100.0 * 2 * tp / den if den else 0.0
    low, high = np.percentile(f1, [2.5, 97.5])
    return {"rounds": rounds, "seed": seed, "confidence": 95,
            "f1_low": float(low), "f1_high": float(high)}


def _paired_counts(gold: list[Document], pred_a: list[Document], pred_b: list[Document]):
    """(A, B): per gold document (in gold order), the (tp, fp, fn) of each system."""
    import numpy as np

    gold_by_id = _index(gold, "gold file")

    def counts(pred: list[Document]) -> "np.ndarray":
        rows = []
        for g, p in _paired_docs(gold_by_id, _index(pred, "predictions")):
            gk = {e.key for e in g.entities}
            pk = {e.key for e in p.entities} if p is not None else set()
            rows.append((len(gk & pk), len(pk - gk), len(gk - pk)))
        return np.array(rows, dtype=np.int64).reshape(-1, 3)

    return counts(pred_a), counts(pred_b)


def _f1(c):
    import numpy as np

    tp, fp, fn = c[..., 0], c[..., 1], c[..., 2]
    den = 2 * tp + fp + fn
    return np.where(den > 0, 200.0 * tp / np.maximum(den, 1), 0.0)


def _resampled_delta(a, b, rng, rounds: int):
    """F1(B) - F1(A) on ``rounds`` resamples of the documents (the same resample for A and B)."""
    import numpy as np

    n = len(a)
    idx = rng.integers(0, n, size=(rounds, n)) if n else np.zeros((rounds, 0), dtype=np.int64)
    return _f1(b[idx].sum(axis=1)) - _f1(a[idx].sum(axis=1))


def _paired_result(a, b, delta) -> dict:
    """F1 of A and B over all documents, B - A, and the 95% interval and win share of ``delta``."""
    import numpy as np

    low, high = np.percentile(delta, [2.5, 97.5])
    f1_a, f1_b = float(_f1(a.sum(axis=0))), float(_f1(b.sum(axis=0)))
    return {"f1_a": f1_a, "f1_b": f1_b, "delta": f1_b - f1_a, "low": float(low), "high": float(high),
            "b_better": float((delta > 0).mean()), "documents": len(a)}


def paired_bootstrap(gold: list[Document], pred_a: list[Document], pred_b: list[Document],
                     rounds: int = 1000, seed: int = 0) -> dict:
    """Micro F1 of B minus micro F1 of A on the same gold documents, with a 95% percentile
    interval from resampling the documents (the same resample for A and B, so what the two
    systems share cancels out) and the share of resamples in which B beats A.

    Use it to say whether an ablation's difference is larger than the sampling noise of a small
    dev sample. Documents are matched by id as in ``evaluate`` (a prediction whose text differs
    from the gold text is an error there too).
    """
    import numpy as np

    if rounds <= 0:
        raise InputError("paired_bootstrap needs a positive number of rounds")
    a, b = _paired_counts(gold, pred_a, pred_b)
    delta = _resampled_delta(a, b, np.random.default_rng(seed), rounds)
    return {**_paired_result(a, b, delta), "rounds": rounds, "seed": seed}


def paired_bootstrap_mean(sets: dict[str, tuple[list[Document], list[Document], list[Document]]],
                          rounds: int = 1000, seed: int = 0) -> dict:
    """System B against system A on several corpora at once: ``sets`` maps a corpus to (gold,
    predictions of A, predictions of B). Each corpus gets its own paired bootstrap (as
    ``paired_bootstrap``), and the mean over corpora of the F1 differences gets a 95% interval from
    resampling the documents of every corpus in each round (each corpus weighs the same,
    whatever its size). Returns {"corpora": {corpus: paired result}, "mean": {...}}."""
    import numpy as np

    if rounds <= 0:
        raise InputError("paired_bootstrap_mean needs a positive number of rounds")
    if not sets:
        raise InputError("paired_bootstrap_mean needs at least one corpus")
    rng = np.random.default_rng(seed)
    per, deltas = {}, []
    for name, (gold, pred_a, pred_b) in sets.items():
        a, b = _paired_counts(gold, pred_a, pred_b)
        d = _resampled_delta(a, b, rng, rounds)
        per[name] = _paired_result(a, b, d)
        deltas.append(d)
    mean = np.mean(deltas, axis=0)
    low, high = np.percentile(mean, [2.5, 97.5])
    return {"corpora": per, "mean": {
        "f1_a": float(np.mean([r["f1_a"] for r in per.values()])),
        "f1_b": float(np.mean([r["f1_b"] for r in per.values()])),
        "delta": float(np.mean([r["delta"] for r in per.values()])), "low": float(low), "high": float(high),
        "b_better": float((mean > 0).mean())}, "rounds": rounds, "seed": seed}


# -- report ----------------------------------------------------------------------------------
def _pct(x: float, n: int | None = None) -> str:
    return "     -" if n == 0 else f"{x:6.2f}"


def format_report(result: dict, gold_name: str = "gold", pred_name: str = "pred") -> str:
    """A plain-text table of an ``evaluate`` result."""
    d = result["documents"]
    lines = [f"gold: {gold_name} ({d['gold']} documents)",
             f"pred: {pred_name} ({d['pred']} documents)"]
    if d["missing_pred"]:
        lines.append(f"  {d['missing_pred']} gold document(s) without a prediction, scored as empty")
    if d["unknown_pred"]:
        lines.append(f"  {d['unknown_pred']} prediction(s) for unknown document ids, ignored: "
                     + ", ".join(map(repr, d["unknown_pred_ids"][:5]))
                     + (" ..." if d["unknown_pred"] > 5 else ""))
    lines.append("")
    width = max([5] + [len(t) + 2 for t in result["per_type"]])
    head = f"{'':{width}}  {'P':>6}  {'R':>6}  {'F1':>6}  {'tp':>6}  {'fp':>6}  {'fn':>6}"
    lines += ["strict span match (start, end, type)", head, "-" * len(head)]

    def row(name: str, m: dict) -> str:
        return (f"{name:{width}}  {_pct(m['precision'], m['pred'])}  {_pct(m['recall'], m['gold'])}  "
                f"{_pct(m['f1'], m['gold'] + m['pred'])}  {m['tp']:6d}  {m['fp']:6d}  {m['fn']:6d}")

    lines.append(row("micro", result["micro"]))
    for t, m in result["per_type"].items():
        lines.append(row("  " + t, m))
    lines.append("")
    lines.append(f"{'nested breakdown':28}  {'correct':>7}  {'count':>6}  {'score':>6}")
    labels = {"gold_nested": "gold nested (recall)", "gold_flat": "gold flat (recall)",
              "pred_nested": "pred nested (precision)", "pred_flat": "pred flat (precision)"}
    for key, label in labels.items():
        m = result["nested"][key]
        score = m.get("recall", m.get("precision"))
        lines.append(f"{label:28}  {m['correct']:7d}  {m['count']:6d}  {_pct(score, m['count'])}")
    b = result.get("bootstrap")
    if b:
        lines.append("")
        lines.append(f"micro F1 {b['confidence']}% bootstrap interval ({b['rounds']} rounds, "
                     f"seed {b['seed']}): [{b['f1_low']:.2f}, {b['f1_high']:.2f}]")
    return "\n".join(lines)


# -- CLI -------------------------------------------------------------------------------------
def _run(args) -> int:
    gold = read_documents(args.gold)
    pred = read_documents(args.pred)
    result = evaluate(gold, pred, bootstrap=args.bootstrap, seed=args.seed, types=args.types)
    if args.json:
        result = dict(result, files={"gold": str(args.gold), "pred": str(args.pred)})
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(format_report(result, str(args.gold), str(args.pred)))
    if gold and not result["micro"]["gold"] and args.types:
        print(f"biotag: warning: no gold entity has type {' or '.join(args.types)}", file=sys.stderr)
    return 0


def _non_negative(s: str) -> int:
    import argparse

    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {s!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return v


def add_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "eval", help="score predictions against gold entities (strict span match)",
        description="Score predicted entities against gold entities: strict match on "
                    "(start, end, type), micro and per-type P/R/F1, a nested-entity breakdown "
                    "and an optional bootstrap interval. Both files are canonical JSONL.")
    p.add_argument("--gold", required=True, type=Path, metavar="G.jsonl", help="gold documents")
    p.add_argument("--pred", required=True, type=Path, metavar="P.jsonl", help="predicted documents")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--bootstrap", type=_non_negative, default=0, metavar="N",
                   help="add a 95%% interval for micro F1 from N document resamples (default: off)")
    p.add_argument("--seed", type=int, default=0, help="random seed for --bootstrap (default: 0)")
    p.add_argument("--types", nargs="+", metavar="T", default=None,
                   help="score only these entity types")
    p.set_defaults(func=_run)
