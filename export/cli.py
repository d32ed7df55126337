"""`biotag export ...` sub-commands. Importing this module imports neither torch nor gguf: the
runtime CLI registers it, and the export itself needs only numpy + gguf + llama-cpp-python.

    biotag export llm --adapter models/biotag-gemma3-s --out biotag.gguf --quant q4_k_m
                      [--base base.gguf] [--lora-out biotag-lora.gguf]
"""
from __future__ import annotations

import json
from pathlib import Path

QUANT_CHOICES = ("f16", "q8_0", "q4_k_m")


def _export_llm(args) -> int:
    from .merge import export_llm, write_lora_gguf

    if args.base is None:
        from biotag.models.gemma import base_gguf_path

        args.base = base_gguf_path()
    progress = not args.quiet
    out = export_llm(args.base, args.adapter, args.out, args.quant, progress=progress)
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB, {args.quant})")
    if args.lora_out is not None:
        lora = write_lora_gguf(args.adapter, args.base, args.lora_out)
        print(f"wrote {lora} (llama.cpp LoRA of the projections; marker rows are only in the merged model)")
    return 0


def _task_bias(items) -> dict[str, float]:
    """``--task-bias NAME=X`` values as {instruction: bias}."""
    from biotag.runtime.errors import InputError
    from biotag.runtime.prompting import DATASETS

    out = {}
    for item in items or []:
        name, sep, val = item.partition("=")
        if not sep or name not in DATASETS:
            raise InputError(f"--task-bias {item!r}: expected NAME=NUMBER with NAME one of "
                             f"{', '.join(DATASETS)}")
        try:
            out[name] = float(val)
        except ValueError:
            raise InputError(f"--task-bias {item!r}: {val!r} is not a number") from None
    return out


def _export_bundle(args) -> int:
    from .bundle import build_bundle

    import json

    metrics = json.loads(Path(args.metrics).read_text(encoding="utf-8")) if args.metrics else None
    mf = build_bundle(args.out, args.adapter, args.quant, args.name, args.version,
                      selector_dir=args.selector, cache=not args.no_cache, progress=not args.quiet,
                      marker_bias=args.marker_bias, metrics=metrics, task_bias=_task_bias(args.task_bias))
    print(f"wrote {mf}")
    return 0


def _export_selector(args) -> int:
    from biotag.runtime.errors import InputError

    if not (args.model / "selector.json").is_file():
        raise InputError(f"{args.model}: not a selector folder (no selector.json; see 'biotag train selector')")
    from .selector import export_selector, write_runtime_config

    thresholds = None
    if args.thresholds:
        try:
            thresholds = json.loads(Path(args.thresholds).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{args.thresholds}: unreadable thresholds file ({exc})") from None
    out = export_selector(args.model, args.out, args.quant)
    cfg = write_runtime_config(out, thresholds)
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB, {args.quant}), {out.parent / 'tokenizer.json'} "
          f"and {cfg}")
    return 0


def add_cli(sub) -> None:
    p = sub.add_parser("export", help="export trained models for the runtime (GGUF for llama.cpp)")
    esub = p.add_subparsers(dest="what", metavar="WHAT")
    q = esub.add_parser(
        "llm", help="merge the tagging LoRA adapter into the base model and write a GGUF",
        description="Fold the LoRA adapter and the trained marker embeddings into the base GGUF "
                    "(dequantized), write F16, then quantize with llama.cpp. Needs no torch.")
    q.add_argument("--base", type=Path, default=None, metavar="BASE.gguf",
                   help="base model GGUF (default: the installed Gemma 3 270M base package)")
    q.add_argument("--adapter", type=Path, required=True, metavar="DIR",
                   help="adapter directory written by 'biotag train llm' (adapter.safetensors, config.json)")
    q.add_argument("--out", type=Path, required=True, metavar="MODEL.gguf", help="output model file")
    q.add_argument("--quant", choices=QUANT_CHOICES, default="q4_k_m",
                   help="output type (default: q4_k_m; f16 = the merge without quantization)")
    q.add_argument("--lora-out", type=Path, default=None, metavar="LORA.gguf",
                   help="also write the LoRA alone as a llama.cpp adapter GGUF (without marker rows)")
    q.add_argument("--quiet", action="store_true", help="no progress output")
    q.set_defaults(func=_export_llm)
    b = esub.add_parser("bundle", help="build a verifiable model bundle (manifest.json + files)")
    b.add_argument("--adapter", type=Path, required=True, metavar="DIR")
    b.add_argument("--out", type=Path, required=True, metavar="DIR")
    b.add_argument("--quant", choices=QUANT_CHOICES, default="q4_k_m")
    b.add_argument("--selector", type=Path, default=None, metavar="DIR",
                   help="exported selector folder (selector.json, ONNX, tokenizer.json)")
    b.add_argument("--marker-bias", type=float, default=0.0,
                   help="log-odds added to marker logits at decoding (tuned on dev sets)")
    b.add_argument("--task-bias", action="append", metavar="NAME=X",
                   help="marker bias of one instruction (e.g. bc2gm=0.5), instead of --marker-bias; repeatable")
    b.add_argument("--metrics", help="JSON file with measured metrics to record in the manifest")
    b.add_argument("--name", default="biotag-default")
    b.add_argument("--version", default="0.1.0")
    b.add_argument("--no-cache", action="store_true",
                   help="put the GGUF inside the bundle instead of rebuilding it from the recipe")
    b.add_argument("--quiet", action="store_true")
    b.set_defaults(func=_export_bundle)
    q = esub.add_parser(
        "selector", help="export the entity selector to ONNX (fp32 or dynamic int8) for onnxruntime",
        description="torch.onnx.export of the encoder + marker head, optional onnxruntime dynamic int8 "
                    "quantization; writes tokenizer.json next to the model. Needs biotag[train].")
    q.add_argument("--model", type=Path, required=True, metavar="DIR",
                   help="selector folder written by 'biotag train selector' (<run_dir>/hf)")
    q.add_argument("--out", type=Path, required=True, metavar="SELECTOR.onnx", help="output ONNX file")
    q.add_argument("--quant", choices=("fp32", "int8"), default="int8", help="weights (default: int8)")
    q.add_argument("--thresholds", metavar="FILE.json",
                   help="per-type thresholds from 'biotag eval-selector --tune' (default: keep every candidate)")
    q.set_defaults(func=_export_selector)
    from .report import add_parser as add_report

    add_report(esub)
