"""Export the selector (a folder written by ``biotag train selector``) to ONNX for the runtime.

    biotag export selector --model runs/biotag-selector/hf --out selector.onnx --quant int8

Why ``torch.onnx.export`` and not optimum's ``ORTModelFor...``: optimum exports the standard
task heads only (sequence classification pools [CLS]); the selector's head reads the hidden state
at the ``[E]`` marker, found inside the graph from ``input_ids``. The legacy TorchScript exporter
(``dynamo=False``, what optimum itself uses for BERT) handles the whole model in one graph; the
dynamo exporter needs onnxscript, which is not installed. int8 is onnxruntime's dynamic
quantization (``quant_pre_process(skip_symbolic_shape=True)`` then ``quantize_dynamic(QInt8)``,
MatMul and Gather: the word embeddings too, so the file stays small (23 MiB for MiniLM with the
Chinese rows, 91 MiB fp32); per-channel weights: on the smoke model they halved the mean logit
error of per-tensor weights at the same size).

The ONNX file carries ``biotag_selector`` metadata (format version, marker ids, vocabulary size,
sha256 of the tokenizer.json written next to it, max_len, context_words) that
``biotag.runtime.selector.Selector`` checks. torch is imported inside the functions only.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from biotag.runtime.errors import InputError
from biotag.runtime.selector import FUSIONS, META_KEY, file_sha256


def _add_metadata(path: Path, meta: dict) -> None:
    import onnx

    m = onnx.load(str(path))
    del m.metadata_props[:]
    p = m.metadata_props.add()
    p.key, p.value = META_KEY, json.dumps(meta, sort_keys=True)
    onnx.save(m, str(path))


def export_fp32(model, out: Path, opset: int = 17) -> Path:
    """torch.onnx.export of a SelectorModel: inputs input_ids/attention_mask/token_type_ids
    (batch, seq), output logits (batch,)."""
    import torch

    model = model.eval()
    ids = torch.tensor([[101, model.open_id, 7, model.close_id, 102], [101, 7, model.open_id, model.close_id, 102]])
    att = torch.ones_like(ids)
    typ = torch.zeros_like(ids)
    dyn = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
           "token_type_ids": {0: "batch", 1: "seq"}, "logits": {0: "batch"}}
    with torch.no_grad():
        torch.onnx.export(model, (ids, att, typ), str(out), input_names=["input_ids", "attention_mask",
                          "token_type_ids"], output_names=["logits"], dynamic_axes=dyn,
                          opset_version=opset, do_constant_folding=True, dynamo=False)
    return out


def quantize_int8(src: Path, out: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as td:
        pre = Path(td) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_dynamic(str(pre), str(out), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul", "Gather"])
    return out


def export_selector(model_dir: str | os.PathLike, out: str | os.PathLike, quant: str = "int8") -> Path:
    """Write ``out`` (ONNX, fp32 or int8) and ``tokenizer.json`` next to it; returns ``out``."""
    from biotag.models.selector_model import load_selector

    if quant not in ("fp32", "int8"):
        raise ValueError(f"quant must be fp32 or int8, not {quant!r}")
    model_dir, out = Path(model_dir), Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model, tok, info = load_selector(model_dir)
    tok_out = out.parent / "tokenizer.json"
    if tok_out.resolve() != (model_dir / "tokenizer.json").resolve():
        shutil.copyfile(model_dir / "tokenizer.json", tok_out)
    meta = {k: info[k] for k in ("format_version", "head", "open_id", "close_id", "max_len", "context_words",
                                 "vocab_size")}
    meta.update(tokenizer_sha256=file_sha256(tok_out), quant=quant, base_model=info.get("base_model", ""))
    with tempfile.TemporaryDirectory() as td:
        fp32 = Path(td) / "fp32.onnx"
        export_fp32(model, fp32)
        if quant == "int8":
            quantize_int8(fp32, out)
        else:
            shutil.copyfile(fp32, out)
    _add_metadata(out, meta)
    return out


def write_runtime_config(onnx_path: str | os.PathLike, thresholds: dict | None = None,
                         metrics: dict | None = None) -> Path:
    """Write ``selector.json`` next to an exported ONNX file: what the runtime and
    ``biotag export bundle --selector`` read (file names, per-type thresholds, measured metrics).
    ``thresholds``: ``{"thresholds": {type: t, "*": default}}`` as ``biotag eval-selector --tune``
    writes; without it every candidate is kept (threshold 0) until thresholds are tuned."""
    onnx_path = Path(onnx_path)
    thr = dict((thresholds or {}).get("thresholds", {}))
    default = float(thr.pop("*", 0.0))
    fusion = (thresholds or {}).get("fusion", "selector")
    if fusion not in FUSIONS:
        raise InputError(f"unknown score fusion {fusion!r} in the thresholds (expected one of {', '.join(FUSIONS)})")
    rule = f"keep a candidate when {FUSIONS[fusion]} >= its type's threshold"
    cfg = {"file": onnx_path.name, "tokenizer": "tokenizer.json", "thresholds": thr, "default": default,
           "fusion": fusion, "threshold_rule": rule,
           "sha256": {"model": file_sha256(onnx_path), "tokenizer": file_sha256(onnx_path.parent / "tokenizer.json")}}
    if metrics:
        cfg["metrics"] = metrics
    out = onnx_path.parent / "selector.json"
    out.write_text(json.dumps(cfg, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return out
