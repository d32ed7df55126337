"""Fine-tune the tagging LLM (Gemma 3 270M + LoRA) on the bilingual mixture. Read it in one sitting.

    biotag train llm --config models/configs/default.json [--resume] [--max-steps N]

Everything about a run is in its config file. The run logs one line every ``log_every`` steps
(loss, tokens/s, ETA), checkpoints every ``ckpt_minutes`` to ``<run_dir>/ckpt.pt`` (atomic) and
resumes from it with ``--resume``: batches are a pure function of (seed, step), so a resumed run
sees exactly the batches the uninterrupted run would have seen.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S ") + msg, file=sys.stderr, flush=True)


def resolve(path: str, base: Path = REPO) -> Path:
    p = Path(os.path.expandvars(path))
    return p if p.is_absolute() else base / p


# --- data --------------------------------------------------------------------------------------
def load_mixture(cfg: dict, table, split: str = "train"):
    """dataset -> list of Examples (word spans) for the configured corpora."""
    from biotag.runtime import corpora
    from biotag.runtime.prompting import Task

    from .llm_data import doc_examples

    data_dir = resolve(cfg["data_dir"])
    fmt = cfg.get("format", "S")
    rng = random.Random(cfg.get("seed", 0))
    mix: dict[str, list] = {}
    counts = Counter()
    for name, dcfg in {**cfg["datasets"], **cfg.get("aux", {})}.items():
        sources = dcfg.get("sources", [name])
        exs = []
        for src in sources:
            task = Task.for_corpus(dcfg.get("task", name), fmt)
            for doc in corpora.load(src, dcfg.get("split", split), data_dir):
                exs.extend(doc_examples(doc, task, counts))
        keep_empty = dcfg.get("keep_empty", 1.0)
        if keep_empty < 1.0:
            exs = [e for e in exs if e.spans or rng.random() < keep_empty]
        rng.shuffle(exs)
        if dcfg.get("cap"):
            exs = exs[: dcfg["cap"]]
        mix[name] = exs
        log(f"data {name}: {len(exs)} sentences, {sum(len(e.spans) for e in exs)} mentions")
    if counts:
        log(f"data: {dict(counts)}")
    return mix


def add_dictionary(cfg: dict, mix: dict) -> dict:
    from .llm_data import build_gazetteer, dictionary_examples

    gaz = build_gazetteer(e for name, exs in mix.items() if name in cfg["datasets"] for e in exs)
    dcfg = cfg.get("dictionary")
    if dcfg and dcfg.get("examples", 0) > 0:
        types_by_lang = {"en": [], "zh": []}
        from biotag.runtime.prompting import DATASETS

        for name in cfg["datasets"]:
            lang = DATASETS.get(name, (name, "en"))[1]
            for e in mix[name][:1]:
                for t in e.task.types:
                    if t not in types_by_lang[lang]:
                        types_by_lang[lang].append(t)
        mix["dictionary"] = dictionary_examples(gaz, types_by_lang, dcfg["examples"],
                                                dcfg.get("per_example", 8), cfg.get("seed", 0),
                                                cfg.get("format", "S"))
        log(f"data dictionary: {len(mix['dictionary'])} examples from {len(gaz)} terms")
    return gaz


def weights_at(cfg: dict, step: int) -> dict[str, float]:
    w = {n: d.get("weight", 1.0) for n, d in cfg["datasets"].items()}
    for n, d in cfg.get("aux", {}).items():
        if step < d.get("until_step", 0):
            w[n] = d.get("weight", 0.1)
    if cfg.get("dictionary", {}).get("examples", 0) > 0:
        w["dictionary"] = cfg["dictionary"].get("weight", 0.05)
    return w


def batch_at(cfg: dict, step: int, micro: int, mix: dict, table, max_len: int):
    """The micro-batch of a step: a pure function of (seed, step, micro)."""
    from .llm_data import example_sequences

    rng = random.Random(f"{cfg.get('seed', 0)}/{step}/{micro}")
    w = {n: v for n, v in weights_at(cfg, step).items() if mix.get(n)}
    names = sorted(w)
    seqs = []
    while len(seqs) < cfg["batch_size"]:
        name = rng.choices(names, weights=[w[n] for n in names])[0]
        ex = mix[name][rng.randrange(len(mix[name]))]
        passes = example_sequences(table, ex)
        s = passes[rng.randrange(len(passes))]
        if len(s.ids) <= max_len and s.positions:
            seqs.append(s)
    return seqs


# --- training ----------------------------------------------------------------------------------
def lr_at(cfg: dict, step: int) -> float:
    warm, total = cfg.get("warmup", 30), cfg["steps"]
    if step < warm:
        return (step + 1) / warm
    prog = (step - warm) / max(1, total - warm)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, prog)))


def build_model(cfg: dict, table):
    import torch

    from .gemma import load_base_torch
    from .torch_tagger import TaggerLM

    torch.manual_seed(cfg.get("seed", 0))
    base = load_base_torch()
    for p in base.parameters():
        p.requires_grad_(False)
    markers = sorted(table.marker_ids.values())
    bracket_open = table.text_ids(" [")[:1]
    bracket_close = table.text_ids(" ]")[:1]
    init = {}
    for unit, tid in table.marker_ids.items():
        if unit == "\u27e7":
            init[tid] = bracket_close
        elif unit == "\u27e6":
            init[tid] = bracket_open
        else:
            init[tid] = list(bracket_open) + list(table.text_ids(" " + unit[1:])[:1])
    lcfg = cfg.get("lora", {})
    return TaggerLM(base, markers, lcfg.get("r", 16), lcfg.get("alpha", 32), lcfg.get("dropout", 0.05), init)


def autocast(cfg: dict):
    """The forward pass's precision: ``"autocast": "bf16"`` runs it under CPU bfloat16 autocast
    (LoRA weights, optimizer and loss stay fp32); absent or ``"fp32"``: plain fp32."""
    import contextlib

    import torch

    mode = cfg.get("autocast", "fp32")
    if mode == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    if mode != "fp32":
        raise SystemExit(f"config 'autocast': {mode!r} is not one of fp32, bf16")
    return contextlib.nullcontext()


def precision_check(cfg: dict, steps: int, held_out: int = 4) -> dict:
    """Train ``steps`` steps in fp32 and again in bf16 autocast from the same initial weights on the
    same batches; report seconds per step, the losses, and each result's loss on ``held_out``
    batches that these steps did not use (each in its own precision)."""
    import torch

    from .gemma import token_table
    from .torch_tagger import collate

    torch.set_num_threads(cfg.get("threads", os.cpu_count() or 2))
    table = token_table()
    mix = load_mixture(cfg, table)
    add_dictionary(cfg, mix)
    model = build_model(cfg, table)
    init = {k: v.clone() for k, v in model.trainable_state().items()}
    max_len = cfg.get("max_len", 320)
    batches = [collate(batch_at(cfg, s, 0, mix, table, max_len)) for s in range(steps)]
    held = [collate(batch_at(cfg, cfg["steps"] + 1000 + k, 0, mix, table, max_len)) for k in range(held_out)]
    out = {"steps": steps, "threads": torch.get_num_threads(), "modes": {}}
    for mode in ("fp32", "bf16"):
        c = dict(cfg, autocast=mode)
        model.load_trainable_state(init)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg["lr"])
        model.train()
        losses, t0 = [], time.time()
        for s, batch in enumerate(batches):
            for g in opt.param_groups:
                g["lr"] = cfg["lr"] * lr_at(cfg, s)
            opt.zero_grad(set_to_none=True)
            with autocast(c):
                loss, _ = model.loss(batch)
            loss.backward()
            opt.step()
            losses.append(round(loss.item(), 5))
        sps = (time.time() - t0) / max(1, steps)
        model.eval()
        with torch.no_grad(), autocast(c):
            held_loss = sum(model.loss(b)[0].item() for b in held) / max(1, len(held))
        out["modes"][mode] = {"s_per_step": round(sps, 2), "losses": losses, "held_out_loss": round(held_loss, 5)}
        log(f"precision check {mode}: {sps:.2f} s/step, last loss {losses[-1]:.4f}, held-out {held_loss:.4f}")
    return out


def config_hash(cfg: dict) -> str:
    # how often it logs/checkpoints and how many CPU threads it uses do not define the run
    keep = {k: v for k, v in cfg.items() if k not in ("log_every", "ckpt_minutes", "threads")}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:12]


def save_ckpt(path: Path, model, opt, step: int, cfg: dict, extra: dict) -> None:
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save({"step": step, "trainable": model.trainable_state(), "opt": opt.state_dict(),
                "config_hash": config_hash(cfg), **extra}, tmp)
    os.replace(tmp, path)


def save_artifacts(out: Path, model, cfg: dict, table, gaz: dict, info: dict) -> None:
    from safetensors.torch import save_file

    from .llm_data import save_gazetteer

    out.mkdir(parents=True, exist_ok=True)
    sd = {k: v.contiguous() for k, v in model.trainable_state().items()}
    save_file(sd, str(out / "adapter.safetensors"))
    save_gazetteer(gaz, out / "gazetteer.tsv")
    meta = {"training_config": cfg, "marker_ids": table.marker_ids, "lora_targets": list(
        __import__("biotag.models.torch_tagger", fromlist=["LORA_TARGETS"]).LORA_TARGETS), **info}
    (out / "config.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def train(cfg: dict, resume: bool = False, max_steps: int | None = None) -> Path:
    import torch

    from .gemma import base_gguf_path, token_table

    torch.set_num_threads(cfg.get("threads", os.cpu_count() or 2))
    run_dir = resolve(cfg.get("run_dir", f"runs/{cfg['name']}"))
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = run_dir / "ckpt.pt"
    table = token_table()
    mix = load_mixture(cfg, table)
    gaz = add_dictionary(cfg, mix)
    model = build_model(cfg, table)
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log(f"model: {n_train / 1e6:.2f}M trainable parameters")
    lora = [p for n, p in model.named_parameters() if p.requires_grad and n != "marker_emb"]
    opt = torch.optim.AdamW([{"params": lora, "lr": cfg["lr"]},
                             {"params": [model.marker_emb], "lr": cfg.get("marker_lr", cfg["lr"])}],
                            weight_decay=cfg.get("weight_decay", 0.0))
    base_lrs = [g["lr"] for g in opt.param_groups]
    step, wall0 = 0, 0.0
    if cfg.get("init_adapter") and not (resume and ckpt.exists()):
        # warm start (a continuation run): LoRA + marker rows of a trained adapter folder
        from safetensors.torch import load_file

        src = resolve(cfg["init_adapter"]) / "adapter.safetensors"
        if not src.is_file():
            raise SystemExit(f"init_adapter: {src} not found")
        model.load_trainable_state(load_file(str(src)))
        log(f"initialised LoRA and marker rows from {src}")
    if resume and ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        if state.get("config_hash") != config_hash(cfg):
            raise SystemExit(f"{ckpt} was written by a different config; refusing to resume")
        model.load_trainable_state(state["trainable"])
        opt.load_state_dict(state["opt"])
        step, wall0 = state["step"], state.get("wall_s", 0.0)
        log(f"resumed from {ckpt} at step {step}")
    total = cfg["steps"] if max_steps is None else min(cfg["steps"], max_steps)
    max_len = cfg.get("max_len", 320)
    model.train()
    t_start, t_ckpt = time.time(), time.time()
    losses, toks, t_log = [], 0, time.time()
    while step < total:
        for g, b in zip(opt.param_groups, base_lrs):
            g["lr"] = b * lr_at(cfg, step)
        opt.zero_grad(set_to_none=True)
        from .torch_tagger import collate

        for micro in range(cfg.get("grad_accum", 1)):
            seqs = batch_at(cfg, step, micro, mix, table, max_len)
            batch = collate(seqs)
            with autocast(cfg):
                loss, _ = model.loss(batch)
            (loss / cfg.get("grad_accum", 1)).backward()
            losses.append(loss.item())
            toks += int(batch["attn"].sum())
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step()
        step += 1
        if step % cfg.get("log_every", 10) == 0 or step == total:
            dt = time.time() - t_log
            sps = dt / max(1, len(losses) / cfg.get("grad_accum", 1))
            log(f"step {step}/{total} loss {sum(losses) / len(losses):.4f} lr {opt.param_groups[0]['lr']:.2e} "
                f"{toks / dt:.0f} tok/s {sps:.2f} s/step ETA {(total - step) * sps / 60:.1f} min")
            losses, toks, t_log = [], 0, time.time()
        if time.time() - t_ckpt > cfg.get("ckpt_minutes", 5) * 60 or step == total:
            save_ckpt(ckpt, model, opt, step, cfg, {"wall_s": wall0 + time.time() - t_start})
            t_ckpt = time.time()
            log(f"checkpoint {ckpt} at step {step}")
    wall = wall0 + time.time() - t_start
    out = resolve(cfg.get("artifact_dir", f"models/{cfg['name']}"))
    if step >= cfg["steps"]:
        save_artifacts(out, model, cfg, table, gaz, {
            "base_model": str(base_gguf_path().name), "steps": step, "wall_s": round(wall, 1),
            "hardware": f"{os.cpu_count()} CPU threads, torch {torch.__version__}"})
        log(f"artifacts written to {out}")
    return out


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="biotag train llm")
    ap.add_argument("--config", required=True)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--max-steps", type=int)
    ap.add_argument("--precision-check", type=int, metavar="N",
                    help="train N steps in fp32 and in bf16 autocast from the same start; print JSON")
    a = ap.parse_args(argv)
    from .llm_data import load_config

    if a.precision_check:
        print(json.dumps(precision_check(load_config(a.config), a.precision_check), indent=1))
        return 0
    train(load_config(a.config), a.resume, a.max_steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
