"""Evaluate the fp32 PyTorch tagging model (base + LoRA + marker rows) with the same
copy-constrained decoder the runtime uses (runtime.decoding), through a PyTorch backend.

    biotag train eval --adapter models/biotag-gemma3-s --corpus ncbi-disease --split dev --sample 100
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def load_tagger_lm(adapter_dir):
    import torch
    from safetensors.torch import load_file

    from .gemma import load_base_torch
    from .torch_tagger import TaggerLM

    cfg = json.loads((Path(adapter_dir) / "config.json").read_text(encoding="utf-8"))
    lcfg = cfg["training_config"].get("lora", {})
    base = load_base_torch()
    for p in base.parameters():
        p.requires_grad_(False)
    model = TaggerLM(base, sorted(cfg["marker_ids"].values()), lcfg.get("r", 16), lcfg.get("alpha", 32), 0.0)
    model.load_trainable_state(load_file(str(Path(adapter_dir) / "adapter.safetensors")))
    model.eval()
    torch.set_grad_enabled(False)
    return model, cfg


def run(args) -> int:
    import torch

    from biotag.runtime.decoding import ConstrainedDecoder
    from biotag.runtime.evaluation.model_eval import evaluate_on_corpus

    from .gemma import token_table
    from .torch_tagger import TorchBackend

    torch.set_num_threads(args.threads or 2)
    model, cfg = load_tagger_lm(args.adapter)
    table = token_table()
    fmt = cfg["training_config"].get("format", "S")
    results = []
    for corpus in args.corpus:
        dec = ConstrainedDecoder(TorchBackend(model), table, speculative=True)
        r = evaluate_on_corpus(dec, corpus, args.split, args.data_dir, args.sample, args.seed, fmt)
        results.append(r)
        m = r["micro"]
        print(f"{corpus:14} {args.split:5} docs {r['run']['documents']:5}  P {m['precision']:6.2f} "
              f"R {m['recall']:6.2f} F1 {m['f1']:6.2f}  ({r['run']['wall_s']} s)", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(results, indent=1, ensure_ascii=False))
    return 0
