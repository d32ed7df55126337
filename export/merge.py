"""Fold a trained tagging adapter into the base GGUF, without torch (numpy + ``gguf`` only).

    merge_lora_to_gguf(base.gguf, adapter_dir, merged-f16.gguf)     # base + LoRA + marker rows
    export_llm(base.gguf, adapter_dir, model.gguf, "q4_k_m")         # merge, then llama.cpp quantizer
    write_lora_gguf(adapter_dir, base.gguf, lora.gguf)               # the LoRA alone, llama.cpp format

The adapter directory is what ``biotag.models.train_llm.save_artifacts`` writes:

* ``adapter.safetensors``: the peft LoRA state dict (``base_model.model.model.layers.{i}.
  {self_attn,mlp}.{q,k,v,o,gate,up,down}_proj.lora_{A,B}.weight``; A is ``(r, in)``, B is
  ``(out, r)``) and ``marker_emb`` (``(n_markers, n_embd)``: the trained embedding rows of the
  marker tokens, in increasing token-id order, as ``build_model`` creates them);
* ``config.json``: ``marker_ids`` (marker unit -> token id) and ``training_config.lora``
  (``r``, ``alpha``; defaults 16 / 32 as in ``build_model``).

What the merge does, tensor by tensor, in the order of the base file: dequantize
(``gguf.quants.dequantize``: Q4_K, Q5_0, Q6_K, Q8_0, ... -> float32), add
``alpha / r * (B @ A)`` to the seven adapted projections (``q_proj -> attn_q``, ``k_proj ->
attn_k``, ``v_proj -> attn_v``, ``o_proj -> attn_output``, ``gate_proj -> ffn_gate``, ``up_proj
-> ffn_up``, ``down_proj -> ffn_down``; summed in float64) and, for layers trained in full, their
deltas (``full.<layer>.<proj>``, ``(out, in)``), replace the marker rows of
``token_embd.weight`` (and of ``output.weight`` where the output is not tied), and write
matrices as F16, vectors as F32 (what llama.cpp's converter does).  All metadata (tokenizer
included) is copied byte for byte from the base, except ``general.file_type`` (MOSTLY_F16).

Orientation, checked against transformers' GGUF loader on the real Gemma 3 270M file: for
``gemma3`` the dequantized GGUF matrix *is* the PyTorch ``nn.Linear`` weight ``(out, in)``, with
no permutation (Gemma uses NeoX-style rotary in llama.cpp; only the norm vectors differ, by the
``+1`` baked into the GGUF, and they are not adapted).  For ``llama`` the GGUF stores q and k
with their rows permuted into llama.cpp's rotary layout, so the LoRA delta of q/k goes through
the same row permutation (which is ``permute(B) @ A``).

On the real base (Gemma 3 270M Q4_K_M, 2 busy cores): merge ~16 s (about half of it is gguf's
parsing of the 262k-token metadata), 518 MiB F16, peak RSS ~2.3 GiB; quantizing to q4_k_m ~12 s,
241 MiB.  Logits of the merged F16 match TaggerLM (fp32, peft) to top-1 on every position.

The output is deterministic (same bytes for the same inputs) and appears atomically (temp file,
then ``os.replace``).  A base/adapter pair that does not fit raises ``ModelError`` before any
output is written.

About the llama.cpp LoRA file (``write_lora_gguf``): llama.cpp can adapt ``token_embd`` for the
*input* lookup (``lora_a`` is then ``(n_vocab, r)`` and ``lora_b`` ``(n_embd, r)``), but Gemma ties
the output matrix to ``token_embd``: llama.cpp then applies the same LoRA pair as an ordinary
matrix product on the output side, where these shapes do not multiply (ggml aborts the process:
``GGML_ASSERT(ggml_can_mul_mat(a, b))``, seen with llama-cpp-python 0.3.36 on a tiny gemma3).
The marker rows therefore cannot travel in the LoRA file of a tied model; there it carries only
the seven projections, and the marker rows need the merged file (or a base whose
``token_embd`` rows were patched).  See ``write_lora_gguf``.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from biotag.runtime.errors import ModelError

ARCHES = ("gemma3", "llama")
PROJ_TO_GGUF = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
                "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}
_LORA_KEY = re.compile(r"(?:^|\.)layers\.(\d+)\.(?:self_attn|mlp)\.(" + "|".join(PROJ_TO_GGUF)
                       + r")\.lora_([AB])(?:\.default)?\.weight$")
_FULL_KEY = re.compile(r"^full\.(\d+)\.(" + "|".join(PROJ_TO_GGUF) + r")$")
# fields the writer sets itself (GGUF.* are the reader's view of the header)
_WRITER_OWNED = {"GGUF.version", "GGUF.tensor_count", "GGUF.kv_count", "general.architecture"}
QUANTS = ("f16", "q8_0", "q4_k_m")


# --- reading the adapter ----------------------------------------------------------------------
_ST_DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "BF16": "<u2"}


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A safetensors file -> float32 numpy arrays (F32/F16/BF16/F64), without the safetensors
    package (a runtime-only install does not have it)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
        n = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8: 8 + n].decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{p}: not a readable safetensors file ({exc})") from None
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dt = _ST_DTYPES[info["dtype"]]
            s, e = (int(x) for x in info["data_offsets"])
            shape = tuple(int(x) for x in info["shape"])
            if base + e > len(raw):
                raise ValueError("data past the end of the file")
            arr = np.frombuffer(raw, dtype=dt, count=(e - s) // np.dtype(dt).itemsize, offset=base + s)
            if info["dtype"] == "BF16":
                arr = (arr.astype(np.uint32) << 16).view(np.float32)
            out[name] = arr.astype(np.float32).reshape(shape)
        except (KeyError, ValueError, TypeError) as exc:
            raise ModelError(f"{p}: tensor {name!r} cannot be read ({type(exc).__name__}: {exc})") from None
    return out


@dataclass
class Adapter:
    """A LoRA adapter in GGUF terms: ``pairs[(layer, gguf_name)] = (A (r, in), B (out, r))``."""

    r: int
    alpha: float
    pairs: dict = field(default_factory=dict)
    marker_ids: list = field(default_factory=list)   # increasing token ids
    marker_emb: np.ndarray | None = None             # (n_markers, n_embd), row k <-> marker_ids[k]
    full: dict = field(default_factory=dict)         # (layer, gguf_name) -> delta (out, in) of a
    #                                                  projection trained in full (``full.<layer>.<proj>``)

    @property
    def scale(self) -> float:
        return self.alpha / self.r


def load_adapter(adapter_dir: str | os.PathLike) -> Adapter:
    d = Path(adapter_dir)
    st, cfg_path = d / "adapter.safetensors", d / "config.json"
    for p in (st, cfg_path):
        if not p.is_file():
            raise ModelError(f"{d}: not an adapter directory ({p.name} missing)")
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{cfg_path}: unreadable ({exc})") from None
    tensors = read_safetensors(st)
    lcfg = (cfg.get("training_config") or {}).get("lora") or {}
    found: dict[tuple[int, str], dict[str, np.ndarray]] = {}
    full: dict[tuple[int, str], np.ndarray] = {}
    marker_emb = None
    for key, arr in tensors.items():
        if key == "marker_emb":
            marker_emb = arr
            continue
        f = _FULL_KEY.match(key)
        if f:
            if not np.isfinite(arr).all() or arr.ndim != 2:
                raise ModelError(f"{st}: {key}: not a finite weight matrix")
            full[(int(f.group(1)), PROJ_TO_GGUF[f.group(2)])] = arr
            continue
        m = _LORA_KEY.search(key)
        if not m:
            raise ModelError(f"{st}: unexpected tensor {key!r} (not a LoRA weight of "
                             f"{'/'.join(PROJ_TO_GGUF)})")
        found.setdefault((int(m.group(1)), PROJ_TO_GGUF[m.group(2)]), {})[m.group(3)] = arr
    if not found:
        raise ModelError(f"{st}: no LoRA weights in the adapter")
    ranks = {a["A"].shape[0] for a in found.values() if "A" in a}
    r = int(lcfg.get("r", next(iter(ranks)) if len(ranks) == 1 else 16))
    alpha = float(lcfg.get("alpha", 32))
    pairs = {}
    for (layer, name), ab in sorted(found.items()):
        if set(ab) != {"A", "B"}:
            raise ModelError(f"{st}: layer {layer} {name}: lora_A or lora_B missing")
        A, B = ab["A"], ab["B"]
        if A.ndim != 2 or B.ndim != 2 or A.shape[0] != r or B.shape[1] != r:
            raise ModelError(f"{st}: layer {layer} {name}: LoRA shapes A{A.shape} B{B.shape} do not "
                             f"have the configured rank r={r}")
        if not (np.isfinite(A).all() and np.isfinite(B).all()):
            raise ModelError(f"{st}: layer {layer} {name}: non-finite LoRA values")
        pairs[(layer, name)] = (A, B)
    raw_ids = cfg.get("marker_ids") or {}
    ids = sorted({v for v in raw_ids.values()}) if isinstance(raw_ids, dict) else sorted(set(raw_ids))
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise ModelError(f"{cfg_path}: marker_ids must be integer token ids")
    if (marker_emb is None) != (not ids):
        raise ModelError(f"{d}: marker_ids and marker_emb must come together")
    if marker_emb is not None:
        if marker_emb.ndim != 2 or marker_emb.shape[0] != len(ids):
            raise ModelError(f"{st}: marker_emb has shape {marker_emb.shape}, expected ({len(ids)}, n_embd) "
                             f"for the {len(ids)} marker ids")
        if not np.isfinite(marker_emb).all():
            raise ModelError(f"{st}: non-finite marker embeddings")
    return Adapter(r=r, alpha=alpha, pairs=pairs, marker_ids=ids, marker_emb=marker_emb, full=full)


# --- reading the base -------------------------------------------------------------------------
def _open_base(base_gguf):
    """-> (path, GGUFReader, arch), with the checks of runtime.llm.check_gguf_file done on the one
    reader (parsing the 262k-token metadata of the Gemma file takes seconds)."""
    from gguf import GGUFReader

    p = Path(base_gguf)
    if not p.is_file():
        raise ModelError(f"{p}: model file not found")
    with open(p, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ModelError(f"{p}: not a GGUF model file")
    try:
        reader = GGUFReader(str(p))
        end = max((int(t.data_offset) + int(t.n_bytes) for t in reader.tensors), default=0)
    except Exception as exc:  # gguf raises assorted errors on damaged files
        raise ModelError(f"{p}: damaged GGUF file ({type(exc).__name__}: {exc})") from None
    if end > p.stat().st_size:
        raise ModelError(f"{p}: truncated GGUF file ({p.stat().st_size} bytes, tensors need {end})")
    arch = _field_str(reader, "general.architecture")
    if arch not in ARCHES:
        raise ModelError(f"{p}: architecture {arch!r} is not supported (only {', '.join(ARCHES)})")
    return p, reader, arch


def _field_str(reader, key: str) -> str | None:
    f = reader.fields.get(key)
    return None if f is None else bytes(f.parts[f.data[0]]).decode("utf-8")


def _field_int(reader, key: str) -> int | None:
    f = reader.fields.get(key)
    return None if f is None else int(f.parts[f.data[0]][0])


def _np_shape(t) -> tuple[int, ...]:
    """numpy (row-major) shape of a reader tensor: GGUF stores ne[0] (the row length) first."""
    return tuple(int(x) for x in reversed(list(t.shape)))


def _permute_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's q/k row order for the Llama architecture (convert_hf_to_gguf's permute)."""
    half = w.shape[0] // n_head // 2
    return w.reshape(n_head, 2, half, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _check_pair(reader, arch: str, adapter: Adapter, base_path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Validate the adapter against the base; -> {gguf tensor name: (A, B')} with B' in GGUF row
    order (permuted for llama q/k)."""
    tensors = {t.name: t for t in reader.tensors}
    n_layer = _field_int(reader, f"{arch}.block_count")
    n_head = _field_int(reader, f"{arch}.attention.head_count")
    n_head_kv = _field_int(reader, f"{arch}.attention.head_count_kv") or n_head
    layers = sorted({layer for layer, _ in adapter.pairs})
    if n_layer is not None and layers and layers[-1] >= n_layer:
        raise ModelError(f"adapter has LoRA weights for layer {layers[-1]}, but the base {base_path} "
                         f"has {n_layer} layers: wrong base model for this adapter")
    out = {}
    for (layer, name), (A, B) in adapter.pairs.items():
        tname = f"blk.{layer}.{name}.weight"
        if tname not in tensors:
            raise ModelError(f"{base_path}: has no tensor {tname} for the adapter's LoRA weights")
        rows, cols = _np_shape(tensors[tname])
        if A.shape[1] != cols or B.shape[0] != rows:
            raise ModelError(f"adapter LoRA for {tname}: A{A.shape} B{B.shape} does not fit the base weight "
                             f"({rows}, {cols}) of {base_path}: wrong base model for this adapter")
        if arch == "llama" and name == "attn_q":
            B = _permute_rows(B, n_head)
        elif arch == "llama" and name == "attn_k":
            B = _permute_rows(B, n_head_kv)
        out[tname] = (A, B)
    for (layer, name), delta in adapter.full.items():
        tname = f"blk.{layer}.{name}.weight"
        if tname not in tensors or tuple(delta.shape) != _np_shape(tensors[tname]):
            raise ModelError(f"adapter full-weight delta for {tname} {delta.shape} does not fit {base_path}: "
                             f"wrong base model for this adapter")
        if arch == "llama" and name in ("attn_q", "attn_k"):
            raise ModelError("full-weight deltas of q/k are supported for gemma3 only")
    if "token_embd.weight" not in tensors:
        raise ModelError(f"{base_path}: no token_embd.weight tensor")
    n_vocab, n_embd = _np_shape(tensors["token_embd.weight"])
    if adapter.marker_ids:
        bad = [i for i in adapter.marker_ids if not 0 <= i < n_vocab]
        if bad:
            raise ModelError(f"adapter marker token ids {bad} are outside the vocabulary of {base_path} "
                             f"({n_vocab} tokens): wrong base model for this adapter")
        if adapter.marker_emb.shape[1] != n_embd:
            raise ModelError(f"adapter marker_emb rows have {adapter.marker_emb.shape[1]} values, the base "
                             f"{base_path} embeds in {n_embd}: wrong base model for this adapter")
    return out


# --- metadata ---------------------------------------------------------------------------------
def _field_value(f):
    from gguf import GGUFValueType as VT

    vt = VT(int(f.types[0]))
    if vt == VT.ARRAY:
        sub = VT(int(f.types[1]))
        if sub == VT.ARRAY:
            raise ModelError(f"metadata field {f.name}: nested arrays are not supported")
        if sub == VT.STRING:
            return [bytes(f.parts[i]) for i in f.data], vt, sub
        return [f.parts[i][0] for i in f.data], vt, sub
    if vt == VT.STRING:
        return bytes(f.parts[f.data[0]]), vt, None
    return f.parts[f.data[0]][0], vt, None


def copy_metadata(reader, writer, overrides: dict | None = None, skip=()) -> None:
    """Copy every KV field of ``reader`` into ``writer`` with its exact type, in file order.

    Strings are copied as raw bytes, numbers as numpy scalars of their stored type, so the
    written values are bit-identical.  Fields the writer owns (the GGUF header counts and
    ``general.architecture``, which the ``GGUFWriter`` constructor sets) and those in ``skip``
    are left out; ``overrides`` maps a key to ``(value, GGUFValueType)`` and replaces the value in
    place (or appends the key if the base has none)."""
    overrides = dict(overrides or {})
    for key, f in reader.fields.items():
        if key in _WRITER_OWNED or key in skip:
            continue
        if key in overrides:
            val, vt = overrides.pop(key)
            writer.add_key_value(key, val, vt)
            continue
        val, vt, sub = _field_value(f)
        if vt.name == "ARRAY" and not val:
            raise ModelError(f"metadata field {key}: empty arrays cannot be written by gguf's writer")
        writer.add_key_value(key, val, vt, sub_type=sub)
    for key, (val, vt) in overrides.items():
        writer.add_key_value(key, val, vt)


# --- writing ----------------------------------------------------------------------------------
def _counting(items, fn):
    items = list(items)
    for k, item in enumerate(items):
        yield item
        fn(k + 1, len(items))


def _progress(items, desc: str, on, **kw):
    """``on``: True (a tqdm bar), False (nothing) or a function ``fn(done, total)``."""
    if callable(on):
        return _counting(items, on)
    if not on:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, file=sys.stderr, leave=False, **kw)


def _write_gguf(out_path: Path, arch: str, fill_metadata, plan, produce, progress: bool, desc: str) -> Path:
    """Stream a GGUF: ``plan`` = [(name, numpy shape, numpy dtype)], ``produce(name)`` -> array.
    Written to a temp file next to ``out_path`` and renamed when complete."""
    from gguf import GGMLQuantizationType as QT
    from gguf import GGUFWriter

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    w = GGUFWriter(str(tmp), arch)
    try:
        fill_metadata(w)
        for name, shape, dtype in plan:
            dt = np.dtype(dtype)
            nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
            w.add_tensor_info(name, shape, dt, nbytes, raw_dtype=QT.F16 if dt == np.float16 else QT.F32)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        for name, shape, dtype in _progress(plan, desc, progress, unit="tensor"):
            arr = np.ascontiguousarray(produce(name), dtype=dtype)
            if arr.shape != tuple(shape):
                raise AssertionError(f"{name}: produced {arr.shape}, planned {shape}")
            w.write_tensor_data(arr)
        w.close()
        os.replace(tmp, out_path)
    except BaseException:
        w.close()
        tmp.unlink(missing_ok=True)
        raise
    return out_path


def merge_lora_to_gguf(base_gguf, adapter_dir, out_path, progress: bool = True) -> Path:
    """base GGUF (any llama.cpp type) + adapter -> F16 GGUF with the LoRA folded in and the marker
    embedding rows in place.  Returns ``out_path``."""
    from gguf import GGUFValueType, LlamaFileType
    from gguf.quants import dequantize

    t0 = time.time()
    base_path, reader, arch = _open_base(base_gguf)
    adapter = load_adapter(adapter_dir)
    deltas = _check_pair(reader, arch, adapter, base_path)
    full = {f"blk.{layer}.{name}.weight": d for (layer, name), d in adapter.full.items()}
    tensors = {t.name: t for t in reader.tensors}
    marker_rows = {}
    if adapter.marker_ids:
        ids = np.asarray(adapter.marker_ids, dtype=np.int64)
        for name in ("token_embd.weight", "output.weight"):   # output.weight only when not tied
            if name in tensors:
                marker_rows[name] = ids

    plan = []
    for t in reader.tensors:
        shape = _np_shape(t)
        plan.append((t.name, shape, np.float16 if len(shape) >= 2 else np.float32))

    def produce(name: str) -> np.ndarray:
        t = tensors[name]
        w = dequantize(t.data, t.tensor_type).reshape(_np_shape(t))
        if name in deltas:
            A, B = deltas[name]
            w = w.astype(np.float64) + adapter.scale * (B.astype(np.float64) @ A.astype(np.float64))
        if name in full:
            w = w.astype(np.float64) + full[name].astype(np.float64)
        if name in marker_rows:
            if w.dtype != np.float32 or not w.flags.writeable:
                w = np.array(w, dtype=np.float32)
            w[marker_rows[name]] = adapter.marker_emb
        if w.ndim >= 2:
            w = w.astype(np.float16)
            if not np.isfinite(w).all():
                raise ModelError(f"{name}: merged weights overflow float16")
            return w
        return w.astype(np.float32)

    def fill(w):
        if progress is True:
            print(f"merge: copying metadata of {base_path.name}", file=sys.stderr, flush=True)
        w.data_alignment = int(reader.alignment)
        copy_metadata(reader, w, overrides={
            "general.file_type": (int(LlamaFileType.MOSTLY_F16), GGUFValueType.UINT32)})

    out = _write_gguf(Path(out_path), arch, fill, plan, produce, progress, "merge")
    if progress is True:
        print(f"merge: wrote {out} ({out.stat().st_size / 2**20:.1f} MiB, {len(deltas)} LoRA-adapted "
              f"tensors, {len(adapter.marker_ids)} marker rows) in {time.time() - t0:.1f} s",
              file=sys.stderr, flush=True)
    return out


def export_llm(base_gguf, adapter_dir, out_path, quant: str = "q4_k_m", progress: bool = True,
               nthread: int | None = None) -> Path:
    """Merge (F16) and, for ``q8_0`` / ``q4_k_m``, quantize with llama.cpp's quantizer.
    ``progress``: True (lines and bars on stderr), False (silent) or a function of the fraction
    done, from 0 to 1 (merge, then quantization)."""
    report = progress if callable(progress) else None
    q = quant.lower()
    if q not in QUANTS:
        raise ModelError(f"unknown quantization {quant!r}; choose one of {', '.join(QUANTS)}")
    out_path = Path(out_path)
    if q == "f16":
        return merge_lora_to_gguf(base_gguf, adapter_dir, out_path,
                                  progress=(lambda k, n: report(k / n)) if report else progress)
    from .quantize import quantize_gguf

    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.f16.tmp")
    try:
        merge_lora_to_gguf(base_gguf, adapter_dir, tmp,
                           progress=(lambda k, n: report(0.3 * k / n)) if report else progress)
        t0 = time.time()
        quantize_gguf(tmp, out_path, q, nthread=nthread or max(1, min(4, os.cpu_count() or 1)),
                      on_tensor=(lambda k, n: report(0.3 + 0.7 * (k - 1) / n)) if report else None)
        if report:
            report(1.0)
        if progress is True:
            print(f"export: quantized to {q}: {out_path} ({out_path.stat().st_size / 2**20:.1f} MiB) "
                  f"in {time.time() - t0:.1f} s", file=sys.stderr, flush=True)
    finally:
        tmp.unlink(missing_ok=True)
    return out_path


def write_lora_gguf(adapter_dir, base_gguf, out_path, progress: bool = False) -> Path:
    """The adapter's LoRA as a llama.cpp LoRA GGUF (``general.type = adapter``, ``adapter.type =
    lora``, ``adapter.lora.alpha``; tensors ``blk.N.<name>.weight.lora_a`` = A ``(r, in)`` and
    ``.lora_b`` = B ``(out, r)``, F32), for ``Llama(model_path=base, lora_path=out)``.

    The marker embedding rows are NOT in it: see the module docstring (tied output).  Use it with a
    base whose marker rows already hold the trained values, or use the merged file."""
    from gguf import GGUFValueType as VT

    base_path, reader, arch = _open_base(base_gguf)
    adapter = load_adapter(adapter_dir)
    if adapter.full:
        raise ModelError(f"{adapter_dir}: the adapter trains whole layers, which a llama.cpp LoRA file "
                         f"cannot carry; merge it instead (merge_lora_to_gguf)")
    deltas = _check_pair(reader, arch, adapter, base_path)
    arrays = {}
    for tname, (A, B) in deltas.items():
        arrays[tname + ".lora_a"] = A.astype(np.float32)
        arrays[tname + ".lora_b"] = B.astype(np.float32)
    plan = [(n, a.shape, np.float32) for n, a in arrays.items()]

    def fill(w):
        w.add_key_value("general.type", "adapter", VT.STRING)
        name = _field_str(reader, "general.name")
        if name:
            w.add_key_value("general.name", f"{name} biotag LoRA", VT.STRING)
        w.add_key_value("adapter.type", "lora", VT.STRING)
        w.add_key_value("adapter.lora.alpha", float(adapter.alpha), VT.FLOAT32)

    return _write_gguf(Path(out_path), arch, fill, plan, arrays.__getitem__, progress, "lora")
