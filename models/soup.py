"""Average the weights of adapters trained one after another from the same start (a checkpoint soup).

    biotag train soup --adapter runs/A/adapter runs/B/adapter runs/C/adapter --out runs/soup/adapter

LoRA factors cannot be averaged one by one (the mean of the B A products is not the product of the
means), so each module's update is averaged exactly, ``mean_i(B_i A_i)``, and factored back to the
adapters' rank by a truncated SVD (``B' = U_r sqrt(S_r)``, ``A' = sqrt(S_r) V_r``). The share of the
update's energy (sum of squared singular values) that the truncation drops is reported; for
continuations of one run it is ~1e-5. The marker rows and every other tensor are averaged directly.
All adapters must share rank, alpha, targets and marker ids. The result's config.json is the last
adapter's, with a ``soup`` entry naming each source and its sha256.
"""
from __future__ import annotations

import json
from pathlib import Path

from biotag.runtime.bundle import sha256_file
from biotag.runtime.errors import BiotagError


def average_lora(adapters: list[dict], rank: int) -> tuple[dict, float]:
    """Average state dicts of LoRA adapters (``...lora_A.weight`` (r, in), ``...lora_B.weight``
    (out, r), other tensors). Returns the averaged state dict at ``rank`` and the largest share of
    update energy lost by the truncation over all modules."""
    import torch

    keys = set(adapters[0])
    for a in adapters[1:]:
        if set(a) != keys:
            raise BiotagError("the adapters do not have the same tensors (different targets or markers)")
    out, worst = {}, 0.0
    for k in sorted(keys):
        if "lora_B" in k:
            continue
        if "lora_A" in k:
            kb = k.replace("lora_A", "lora_B")
            dw = sum(a[kb].double() @ a[k].double() for a in adapters) / len(adapters)
            U, S, Vh = torch.linalg.svd(dw, full_matrices=False)
            energy = float((S ** 2).sum())
            if energy > 0:
                worst = max(worst, float((S[rank:] ** 2).sum()) / energy)
            s = S[:rank].sqrt()
            out[kb] = (U[:, :rank] * s).to(adapters[0][kb].dtype).contiguous()
            out[k] = (s[:, None] * Vh[:rank]).to(adapters[0][k].dtype).contiguous()
        else:
            if len({tuple(a[k].shape) for a in adapters}) != 1:
                raise BiotagError(f"the adapters' {k} have different shapes")
            out[k] = (sum(a[k].double() for a in adapters) / len(adapters)).to(adapters[0][k].dtype)
    return out, worst


def soup(sources: list[Path], out: Path) -> dict:
    """Write the averaged adapter folder ``out`` from adapter folders ``sources``; return a summary."""
    from safetensors.torch import load_file, save_file

    if len(sources) < 2:
        raise BiotagError("a soup needs at least two adapters")
    cfgs = []
    for s in sources:
        if not (s / "adapter.safetensors").is_file() or not (s / "config.json").is_file():
            raise BiotagError(f"{s} is not an adapter folder (adapter.safetensors and config.json)")
        cfgs.append(json.loads((s / "config.json").read_text(encoding="utf-8")))
    for key in ("marker_ids", "lora_targets", "base_model"):
        if any(c.get(key) != cfgs[0].get(key) for c in cfgs):
            raise BiotagError(f"the adapters differ in {key}; only continuations of one run can be averaged")
    loras = [c["training_config"].get("lora", {}) for c in cfgs]
    if any((lo.get("r"), lo.get("alpha")) != (loras[0].get("r"), loras[0].get("alpha")) for lo in loras):
        raise BiotagError("the adapters differ in LoRA rank or alpha")
    state, lost = average_lora([load_file(str(s / "adapter.safetensors")) for s in sources],
                               int(loras[0].get("r", 16)))
    out.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out / "adapter.safetensors"))
    cfg = dict(cfgs[-1])
    cfg["soup"] = {"sources": [{"adapter": str(s), "steps": c.get("steps"),
                                "sha256": sha256_file(s / "adapter.safetensors")} for s, c in zip(sources, cfgs)],
                   "energy_lost": lost}
    (out / "config.json").write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    gaz = sources[-1] / "gazetteer.tsv"
    if gaz.is_file():
        (out / "gazetteer.tsv").write_bytes(gaz.read_bytes())
    return {"out": str(out), "sources": len(sources), "energy_lost": lost}


def run_cli(args) -> int:
    summary = soup([Path(p) for p in args.adapter], Path(args.out))
    print(json.dumps(summary))
    return 0
