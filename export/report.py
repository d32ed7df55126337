"""Quantization report: what each export step costs in accuracy, size and load time.

    biotag export report --adapter models/biotag-gemma3-s --corpus ncbi-disease bc5cdr cmedqaner \\
        --sample 40 --gguf-dir runs/gguf --out runs/eval/quant_report.json \\
        --card models/biotag-gemma3-s/MODEL_CARD.md

On dev sets (seeded samples of the same documents for every variant), the LLM as PyTorch fp32
(base dequantized + LoRA + marker rows; needs biotag[train]) and as GGUF F16 / Q8_0 / Q4_K_M,
all through the same copy-constrained decoder with the same marker bias; file sizes and load
times. With ``--selector DIR`` and ``--pred`` (LLM predictions on dev sets, as
``biotag eval-model --pred-dir`` writes), the selector's fp32 and int8 ONNX files are compared on
those candidates (end-to-end F1 at the shipped thresholds, decision agreement). The result is JSON
and, with ``--card``, a section of the model card (replaced on every run).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

CARD_BEGIN, CARD_END = "<!-- biotag export report -->", "<!-- /biotag export report -->"
GGUF_QUANTS = ("f16", "q8_0", "q4_k_m")


def _log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} report: {msg}", file=sys.stderr, flush=True)


def _eval_decoder(make_decoder, corpora, sample, seed, fmt, data_dir) -> list[dict]:
    from biotag.runtime.evaluation.model_eval import evaluate_on_corpus

    out = []
    for corpus in corpora:
        r = evaluate_on_corpus(make_decoder(), corpus, "dev", data_dir, sample, seed, fmt)
        _log(f"  {corpus}: F1 {r['micro']['f1']:.2f} ({r['run']['wall_s']} s)")
        out.append({"corpus": corpus, "documents": r["run"]["documents"], "f1": round(r["micro"]["f1"], 2),
                    "precision": round(r["micro"]["precision"], 2), "recall": round(r["micro"]["recall"], 2),
                    "wall_s": r["run"]["wall_s"]})
    return out


def eval_gguf(path: Path, args, fmt: str) -> dict:
    from biotag.runtime.decoding import ConstrainedDecoder
    from biotag.runtime.llm import LlamaBackend, llama_tokenize_fn, load_llama
    from biotag.runtime.prompting import TokenTable

    t0 = time.time()
    llm = load_llama(path, n_ctx=2048, n_threads=args.threads)
    load_s = time.time() - t0
    table = TokenTable(llama_tokenize_fn(llm), llm.token_bos())
    res = _eval_decoder(lambda: ConstrainedDecoder(LlamaBackend(llm), table, speculative=True,
                                                   marker_bias=args.marker_bias),
                        args.corpus, args.sample, args.seed, fmt, args.data_dir)
    del llm
    return {"file": path.name, "mib": round(path.stat().st_size / 2**20, 1), "load_s": round(load_s, 2),
            "dev": res}


def eval_fp32(args, fmt: str) -> dict:
    import torch

    from biotag.models.eval_llm import load_tagger_lm
    from biotag.models.gemma import token_table
    from biotag.models.torch_tagger import TorchBackend
    from biotag.runtime.decoding import ConstrainedDecoder

    torch.set_num_threads(args.threads or 2)
    t0 = time.time()
    model, _ = load_tagger_lm(args.adapter)
    load_s = time.time() - t0
    table = token_table()
    res = _eval_decoder(lambda: ConstrainedDecoder(TorchBackend(model), table, speculative=True,
                                                   marker_bias=args.marker_bias),
                        args.corpus, args.sample, args.seed, fmt, args.data_dir)
    n = sum(p.numel() for p in model.parameters())
    return {"file": "PyTorch fp32 (base + LoRA + marker rows)", "mib": round(4 * n / 2**20, 1),
            "load_s": round(load_s, 2), "dev": res}


def eval_selector_pair(args) -> dict:
    from biotag.runtime.selector import Selector
    from biotag.runtime.evaluation.selector_eval import filtered, load_pred_files, micro, score_candidates
    from biotag.runtime.tagger import threshold_for

    d = Path(args.selector)
    cfg = json.loads((d / "selector.json").read_text(encoding="utf-8"))
    thr = dict(cfg.get("thresholds", {}))
    thr["*"] = cfg.get("default", 0.0)
    files = {"fp32": d / "selector.fp32.onnx", "int8": d / cfg["file"]}
    items = [(c, g, p) for c, _, g, p in load_pred_files(args.pred, args.data_dir)]
    out: dict = {"thresholds": thr, "variants": {}}
    scores_by = {}
    for name, f in files.items():
        if not f.is_file():
            out["variants"][name] = {"missing": f.name}
            continue
        sel = Selector(f, d / cfg["tokenizer"], device="cpu", threads=args.threads, batch_size=64)
        t0 = time.time()
        scores = [score_candidates(sel, pred, cfg.get("fusion", "selector")) for _, _, pred in items]
        n = sum(len(s) for ss in scores for s in ss)
        scores_by[name] = scores
        per = {c: micro(g, filtered(pred, sc, thr, c))["f1"] for (c, g, pred), sc in zip(items, scores)}
        out["variants"][name] = {"file": f.name, "mib": round(f.stat().st_size / 2**20, 1),
                                 "ms_per_candidate": round(1000 * (time.time() - t0) / max(1, n), 2), "f1": per}
    out["without_selector"] = {c: micro(g, pred)["f1"] for c, g, pred in items}
    if len(scores_by) == 2:
        same = total = 0
        for (c, _, pred), a, b in zip(items, scores_by["fp32"], scores_by["int8"]):
            for x, sa, sb in zip(pred, a, b):
                for e, u, v in zip(x.entities, sa, sb):
                    t = threshold_for(thr, e.type, c, 0.0)
                    same += int((u >= t) == (v >= t))
                    total += 1
        out["decision_agreement"] = round(same / max(1, total), 4)
        out["candidates"] = total
    return out


def card_section(rep: dict) -> str:
    rows = rep["llm"]
    corpora = [r["corpus"] for r in next(iter(rows.values()))["dev"]]
    ref = rows.get("fp32")
    lines = [CARD_BEGIN, "## Quantization report (`biotag export report`)", "",
             f"Dev sets, seeded samples of {rep['sample']} documents (seed {rep['seed']}) per corpus, the same "
             f"documents for every variant; marker bias {rep['marker_bias']}; {rep['threads']} threads on "
             f"{rep['hardware']}. F1 is strict span match; load time is wall time to a ready model.", "",
             "| variant | size MiB | load s | " + " | ".join(f"{c} F1" for c in corpora) +
             (" | max drop vs fp32 |" if ref else " |"),
             "|---|---|---|" + "---|" * len(corpora) + ("---|" if ref else "")]
    for name, r in rows.items():
        f1 = {x["corpus"]: x["f1"] for x in r["dev"]}
        cells = " | ".join(f"{f1[c]:.2f}" for c in corpora)
        drop = ""
        if ref:
            rf = {x["corpus"]: x["f1"] for x in ref["dev"]}
            drop = f" {max(rf[c] - f1[c] for c in corpora):+.2f} |" if name != "fp32" else " – |"
        lines.append(f"| {name} | {r['mib']} | {r['load_s']} | {cells} |{drop}")
    lines.append("")
    if rep.get("verdict"):
        lines += [rep["verdict"], ""]
    sel = rep.get("selector")
    if sel and sel.get("variants"):
        cs = list(sel["without_selector"])
        lines += ["Selector (end-to-end F1 on the LLM's dev candidates at the shipped thresholds):", "",
                  "| variant | size MiB | ms/candidate | " + " | ".join(cs) + " |", "|---|---|---|" + "---|" * len(cs),
                  "| no selector | – | – | " + " | ".join(f"{sel['without_selector'][c]:.2f}" for c in cs) + " |"]
        for name, v in sel["variants"].items():
            if "f1" in v:
                lines.append(f"| {name} | {v['mib']} | {v['ms_per_candidate']} | " +
                             " | ".join(f"{v['f1'][c]:.2f}" for c in cs) + " |")
        if "decision_agreement" in sel:
            lines += ["", f"fp32 and int8 make the same keep/drop decision on {100 * sel['decision_agreement']:.2f}% "
                          f"of {sel['candidates']} candidates."]
        lines.append("")
    lines.append(CARD_END)
    return "\n".join(lines)


def write_into_card(card: Path, section: str) -> None:
    text = card.read_text(encoding="utf-8") if card.is_file() else ""
    if CARD_BEGIN in text and CARD_END in text:
        a = text.index(CARD_BEGIN)
        b = text.index(CARD_END) + len(CARD_END)
        text = text[:a] + section + text[b:]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    card.write_text(text, encoding="utf-8")


def verdict(rep: dict, tolerance: float = 0.5) -> str:
    rows = rep["llm"]
    if "fp32" not in rows:
        return "No fp32 reference in this report (not asked for, or biotag[train] not installed): drops are not measured."
    rf = {x["corpus"]: x["f1"] for x in rows["fp32"]["dev"]}
    ok = []
    for q in reversed(GGUF_QUANTS):          # smallest first
        if q in rows:
            drop = max(rf[x["corpus"]] - x["f1"] for x in rows[q]["dev"])
            rep.setdefault("max_drop", {})[q] = round(drop, 2)
            if drop <= tolerance:
                ok.append(q)
    rep["smallest_within_tolerance"] = ok[0] if ok else None
    parts = [f"{q}: largest drop {rep['max_drop'][q]:+.2f} F1" for q in GGUF_QUANTS if q in rep.get("max_drop", {})]
    head = (f"Smallest quantization within {tolerance} F1 of fp32 on every sampled dev set: "
            f"**{rep['smallest_within_tolerance']}**." if ok else
            f"No quantization is within {tolerance} F1 of fp32 on every sampled dev set.")
    return head + " (" + "; ".join(parts) + "; a negative drop means the quantized model scored higher.)"


def run(args) -> int:
    import os
    import platform

    from biotag.runtime.errors import InputError

    from .merge import export_llm

    adapter = Path(args.adapter)
    cfg = json.loads((adapter / "config.json").read_text(encoding="utf-8"))
    fmt = cfg.get("training_config", {}).get("format", "S")
    gguf_dir = Path(args.gguf_dir)
    gguf_dir.mkdir(parents=True, exist_ok=True)
    rep: dict = {"adapter": str(adapter), "corpora": args.corpus, "split": "dev", "sample": args.sample,
                 "seed": args.seed, "marker_bias": args.marker_bias, "threads": args.threads,
                 "hardware": f"{os.cpu_count()} CPU threads, {platform.machine()}", "llm": {}}
    for v in args.variants:
        if v == "fp32":
            try:
                import torch  # noqa: F401
            except ImportError:
                _log("fp32: torch not installed (biotag[train]); skipped")
                continue
            _log("fp32 (PyTorch)")
            rep["llm"]["fp32"] = eval_fp32(args, fmt)
            continue
        if v not in GGUF_QUANTS:
            raise InputError(f"unknown variant {v!r}: fp32, {', '.join(GGUF_QUANTS)}")
        path = gguf_dir / f"model-{v}.gguf"
        if not path.is_file():
            from biotag.models.gemma import base_gguf_path

            _log(f"building {path}")
            export_llm(base_gguf_path(), adapter, path, v, progress=False)
        _log(f"{v} ({path})")
        rep["llm"][v] = eval_gguf(path, args, fmt)
    rep["verdict"] = verdict(rep, args.tolerance)
    if args.selector and args.pred:
        _log("selector fp32 vs int8")
        rep["selector"] = eval_selector_pair(args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rep, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    _log(f"wrote {args.out}")
    if args.card:
        write_into_card(Path(args.card), card_section(rep))
        _log(f"section written into {args.card}")
    print(rep["verdict"])
    return 0


def add_parser(esub) -> None:
    q = esub.add_parser("report", help="dev-set F1, size and load time of fp32 vs F16/Q8_0/Q4_K_M (and the selector)")
    q.add_argument("--adapter", type=Path, required=True, metavar="DIR")
    q.add_argument("--corpus", nargs="+", required=True)
    q.add_argument("--sample", type=int, default=40, help="documents per dev set (seeded sample; default 40)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--variants", nargs="+", default=["fp32", *GGUF_QUANTS])
    q.add_argument("--gguf-dir", default="runs/gguf", help="where model-<quant>.gguf are (built when missing)")
    q.add_argument("--marker-bias", type=float, default=0.0)
    q.add_argument("--tolerance", type=float, default=0.5, help="allowed F1 drop vs fp32 (default 0.5)")
    q.add_argument("--selector", help="exported selector folder (selector.json, selector.fp32.onnx, int8 file)")
    q.add_argument("--pred", nargs="*", help="LLM dev predictions (CORPUS.dev.jsonl) for the selector comparison")
    q.add_argument("--data-dir")
    q.add_argument("--threads", type=int, default=2)
    q.add_argument("--out", default="runs/eval/quant_report.json")
    q.add_argument("--card", help="model card to write the report section into")
    q.set_defaults(func=run)
