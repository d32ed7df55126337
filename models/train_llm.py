"""Fine-tune the tagging LLM (Gemma 3 270M + LoRA) on the bilingual mixture. Read it in one sitting.

    biotag train llm --config models/configs/model2.json [--resume] [--max-steps N]
    biotag train llm --config C --precision-check N      # N steps fp32 vs the configured fast path
    biotag train llm --curve-png runs/NAME/curve.csv     # draw a learning curve

Every setting of a run and its default is in ``TrainConfig`` below; a config file names only what
differs, is validated once before anything runs, and its hash (``config_hash``, over the file's
own keys) names the run: a checkpoint written under another hash is refused.

Speed on a CPU (AMX bf16): the frozen base weights are stored in bfloat16 (``"weights": "bf16"``),
the sequences of a step are packed into rows of at most ``pack_len`` tokens (positions restart per
sequence, so attention stays inside it: the same loss without padding), and the 262k-row output
matrix is applied only to the 2-10 candidate tokens of each decision. LoRA weights, marker rows,
optimizer and loss stay fp32.

The run logs loss, examples/s and real tokens/s every ``log_every`` steps, checkpoints every
``ckpt_minutes`` to ``<run_dir>/ckpt.pt`` (atomic; LoRA + marker rows + optimizer) and, every
``curve.every`` steps, scores a fixed seeded sample of every dev set into ``<run_dir>/curve.csv``.
Batches are a pure function of (seed, step), so a resumed run sees exactly the batches the
uninterrupted run would have seen. Logging, config paths, the hash, atomic checkpoint files and the
LR schedule's formula are the run scaffolding shared with ``train_selector`` (``run_scaffold``).
"""
from __future__ import annotations

import dataclasses
import json
import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import run_scaffold
from .run_scaffold import REPO  # noqa: F401  (the repository root, for this module's users)
from .run_scaffold import (load_checkpoint, log, lr_factor, read_config, refuse_other_run, replace_atomically,
                           resolve, save_checkpoint, set_lr)


LORA_DEFAULTS = {"r": 16, "alpha": 32, "dropout": 0.05}   # a config's "lora" and an adapter's
#                                                          training_config.lora fill in from these


# --- every setting, with its default ------------------------------------------------------------
@dataclass(frozen=True)
class TrainConfig:
    name: str                                  # run name: runs/<name>/ and models/<name>/
    datasets: dict                             # dataset -> {weight, sources, split, cap, keep_empty, task,
    #                                            profile}; "profile": false keeps a corpus out of the
    #                                            profile instruction (its guideline conflicts with the
    #                                            profile's types: AnatEM's Anatomy includes cancers and cells)
    steps: int                                 # optimizer steps of the whole run (the LR schedule's length)
    lr: float                                  # peak learning rate of the LoRA weights
    # data
    data_dir: str = "../shared/data"
    format: str = "S"                          # tag format: S (one pass, typed markers) or P
    seed: int = 0
    aux: dict = field(default_factory=dict)    # auxiliary datasets (GERBERA): {weight, until_step}
    dictionary: dict = field(default_factory=dict)  # dictionary examples (VANER): {examples, per_example, weight}
    profile: dict = field(default_factory=dict)  # profile instruction share: {"share": p}; p of the
    #                                            corpus examples are asked under their language's
    #                                            all-types profile with partial labels (runtime.profiles);
    #                                            "compete_at_openings": true lets every type's opener
    #                                            compete where the gold opens an entity (llm_data.Example)
    max_len: int = 320                         # longer sequences are not sampled
    # batches
    batch_size: int = 8                        # sequences per micro-batch
    grad_accum: int = 1                        # micro-batches per optimizer step
    pack_len: int = 0                          # >0: pack a micro-batch into rows of <= pack_len tokens
    # optimisation
    warmup: int = 30
    decay: str = "cosine"                      # after the warmup: "cosine" to 0.1 of the peak at
    #                                            ``steps``, or "linear" to 0 at ``steps``
    start_step: int = 0                        # a continuation of another run (init_adapter = its
    #                                            snapshot): steps, batches and the LR schedule start
    #                                            here, so it draws the batches that run would have
    #                                            drawn next (same seed and datasets)
    marker_lr: float | None = None             # learning rate of the marker-token rows (default: lr)
    weight_decay: float = 0.0
    lora: dict = field(default_factory=lambda: dict(LORA_DEFAULTS))
    init_adapter: str | None = None            # warm start from a trained adapter folder
    unfreeze: dict = field(default_factory=dict)  # {"layers": k, "lr": x}: the seven projection
    #                                            weights of the top k decoder layers are trained in
    #                                            full at peak lr x (default: lr), next to their LoRA;
    #                                            the adapter carries their deltas (bf16, 11 MB a layer)
    # precision
    weights: str = "fp32"                      # frozen base weights: fp32 or bf16 (AMX matmuls)
    autocast: str = "fp32"                     # forward under CPU bf16 autocast: fp32 or bf16
    attention: str = "sdpa"                    # attention kernel: sdpa, eager or segments (same
    #                                            result; segments attends each packed sequence on its
    #                                            own with causal SDPA and no mask: segment_attention)
    lora_compute: str = "fp32"                 # LoRA matmuls in fp32 (activations cast up) or "input":
    #                                            in the activations' dtype (bf16 under bf16 weights; the
    #                                            fp32 LoRA weights are cast down instead, fewer casts)
    compile: str = "none"                      # "layers": torch.compile each decoder layer for the
    #                                            training steps (no-grad calls, e.g. the curve's
    #                                            decoding, stay eager): compile_layers
    # bookkeeping (not part of the config hash)
    log_every: int = 10
    ckpt_minutes: float = 5
    threads: int = 0                           # torch threads; 0 = every CPU
    run_dir: str = ""                          # default runs/<name>
    artifact_dir: str = ""                     # default models/<name>
    curve: dict = field(default_factory=dict)  # {every, sample, datasets, seed}: dev F1 learning curve

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise SystemExit(f"config: unknown setting(s) {', '.join(unknown)}")
        missing = sorted(f.name for f in dataclasses.fields(cls)
                         if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                         and f.name not in d)
        if missing:
            raise SystemExit(f"config: missing setting(s) {', '.join(missing)}")
        c = cls(**d)
        for key, ok in (("weights", ("fp32", "bf16")), ("autocast", ("fp32", "bf16")), ("format", ("S", "P")),
                        ("attention", ("sdpa", "eager", "segments")), ("lora_compute", ("fp32", "input")),
                        ("compile", ("none", "layers")), ("decay", ("cosine", "linear"))):
            if getattr(c, key) not in ok:
                raise SystemExit(f"config {key!r}: {getattr(c, key)!r} is not one of {', '.join(ok)}")
        if c.steps < 1 or c.batch_size < 1 or c.grad_accum < 1 or c.lr <= 0:
            raise SystemExit("config: steps, batch_size, grad_accum and lr must be positive")
        if not 0 <= c.start_step < c.steps:
            raise SystemExit("config: start_step must be at least 0 and below steps")
        if c.start_step and not c.init_adapter:
            raise SystemExit("config: a run that starts at start_step > 0 continues init_adapter; set it")
        if not 0 <= c.profile.get("share", 0) <= 1:
            raise SystemExit("config profile.share must be in [0, 1]")
        extra = sorted(set(c.profile) - {"share", "compete_at_openings"})
        if extra:
            raise SystemExit(f"config profile: unknown setting(s) {', '.join(extra)} (share, compete_at_openings)")
        extra = sorted(set(c.unfreeze) - {"layers", "lr"})
        if extra:
            raise SystemExit(f"config unfreeze: unknown setting(s) {', '.join(extra)} (layers, lr)")
        k, ulr = c.unfreeze.get("layers", 0), c.unfreeze.get("lr", c.lr)
        if not (isinstance(k, int) and not isinstance(k, bool) and k >= 0) or not ulr > 0:
            raise SystemExit("config unfreeze: layers must be a whole number >= 0 and lr positive")
        bad = sorted(n for n, dc in c.datasets.items() if not isinstance(dc.get("profile", True), bool))
        if bad:
            raise SystemExit(f"config datasets {', '.join(bad)}: 'profile' must be true or false")
        return c

    def get(self, key, default=None):   # dict-style access for the data helpers
        return getattr(self, key, default)

    def __getitem__(self, key):
        return getattr(self, key)

    @property
    def run_path(self) -> Path:
        return resolve(self.run_dir or f"runs/{self.name}")

    @property
    def artifact_path(self) -> Path:
        return resolve(self.artifact_dir or f"models/{self.name}")


# do not define the run: bookkeeping, and kernels that compute the same function (up to rounding)
RUN_INDEPENDENT = ("log_every", "ckpt_minutes", "threads", "curve", "attention", "lora_compute", "compile")


def load_config(path: str | Path) -> tuple[TrainConfig, dict]:
    """(validated config, the file's own dict: what config_hash reads)."""
    raw = read_config(path)
    return TrainConfig.from_dict(raw), raw


def config_hash(raw: dict) -> str:
    """The run's name: the hash of the config file's own keys except ``RUN_INDEPENDENT``."""
    return run_scaffold.config_hash(raw, RUN_INDEPENDENT)


# --- data --------------------------------------------------------------------------------------
def load_mixture(cfg, table, split: str = "train"):
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


def add_dictionary(cfg, mix: dict) -> dict:
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


def weights_at(cfg, step: int) -> dict[str, float]:
    w = {n: d.get("weight", 1.0) for n, d in cfg["datasets"].items()}
    for n, d in cfg.get("aux", {}).items():
        if step < d.get("until_step", 0):
            w[n] = d.get("weight", 0.1)
    if (cfg.get("dictionary") or {}).get("examples", 0) > 0:
        w["dictionary"] = cfg["dictionary"].get("weight", 0.05)
    return w


def batch_at(cfg, step: int, micro: int, mix: dict, table, max_len: int):
    """The micro-batch of a step: a pure function of (seed, step, micro)."""
    from biotag.runtime.prompting import DATASETS
    from biotag.runtime.profiles import profile_for

    from .llm_data import example_sequences, profile_example

    rng = random.Random(f"{cfg.get('seed', 0)}/{step}/{micro}")
    w = {n: v for n, v in weights_at(cfg, step).items() if mix.get(n)}
    names = sorted(w)
    share = (cfg.get("profile") or {}).get("share", 0.0)
    compete = bool((cfg.get("profile") or {}).get("compete_at_openings"))
    seqs = []
    while len(seqs) < cfg["batch_size"]:
        name = rng.choices(names, weights=[w[n] for n in names])[0]
        ex = mix[name][rng.randrange(len(mix[name]))]
        # the draw is made for every corpus, so a corpus kept out of the profile leaves every
        # other example of the batch as it would have been
        if share and name in cfg["datasets"] and rng.random() < share \
                and cfg["datasets"][name].get("profile", True):
            ex = profile_example(ex, profile_for(DATASETS.get(name, (name, "en"))[1]), compete) or ex
        passes = example_sequences(table, ex)
        s = passes[rng.randrange(len(passes))]
        if len(s.ids) <= max_len and s.positions:
            seqs.append(s)
    return seqs


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Linear warmup over ``warmup`` steps from ``start_step``, then ``decay`` to ``steps``."""
    return lr_factor(step - cfg.start_step, cfg.warmup, cfg.steps - cfg.start_step, cfg.decay)


# --- model ---------------------------------------------------------------------------------------
def build_model(cfg: TrainConfig, table):
    import torch

    from .gemma import load_base_torch
    from .torch_tagger import TaggerLM, compile_layers, lora_in_input_dtype

    torch.manual_seed(cfg.seed)
    base = load_base_torch(torch.bfloat16 if cfg.weights == "bf16" else torch.float32)
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
    lcfg = {**LORA_DEFAULTS, **cfg.lora}
    base.config._attn_implementation = cfg.attention
    model = TaggerLM(base, markers, lcfg["r"], lcfg["alpha"], lcfg["dropout"], init)
    if cfg.unfreeze.get("layers"):
        model.unfreeze_top(cfg.unfreeze["layers"])
    for p in model.parameters():        # trainable weights stay fp32 whatever the base's dtype
        if p.requires_grad and p.dtype != torch.float32:
            p.data = p.data.float()
    if cfg.lora_compute == "input":
        lora_in_input_dtype(model.peft)
    if cfg.compile == "layers":
        compile_layers(model.body)
    return model


def load_adapter_into(model, table, adapter_dir: Path) -> None:
    """Warm start: LoRA weights and marker rows of a trained adapter folder. Marker rows are
    matched by token id, so an adapter trained before a type was appended still loads (the new
    type keeps its initial row)."""
    import torch
    from safetensors.torch import load_file

    src = adapter_dir / "adapter.safetensors"
    if not src.is_file():
        raise SystemExit(f"init_adapter: {src} not found")
    sd = load_file(str(src))
    meta = json.loads((adapter_dir / "config.json").read_text(encoding="utf-8"))
    old_ids = sorted(meta["marker_ids"].values())
    rows = sd.pop("marker_emb")
    sd = widen_lora(sd, model, {**LORA_DEFAULTS, **meta.get("training_config", {}).get("lora", {})})
    with torch.no_grad():
        for k, tid in enumerate(old_ids):
            if tid in model.marker_ids:
                model.marker_emb[model.marker_ids.index(tid)] = rows[k]
    sd["marker_emb"] = model.marker_emb.detach().clone()
    model.load_trainable_state(sd)
    log(f"initialised LoRA and marker rows from {src}")


def widen_lora(sd: dict, model, lora: dict) -> dict:
    """An adapter's LoRA weights fitted to ``model``'s rank, computing the same function: a rank-r
    adapter goes into the first r rows of A and columns of B (scaled by the ratio of the two
    alpha / r), the model's other rows of A keep their random initialisation and B's other columns
    are 0, so training can use the added rank from where the adapter left off."""
    from peft import get_peft_model_state_dict

    target = get_peft_model_state_dict(model.peft)
    new_r = next(v.shape[0] for k, v in target.items() if "lora_A" in k)
    old_r = next(v.shape[0] for k, v in sd.items() if "lora_A" in k)
    if new_r < old_r:
        raise SystemExit(f"init_adapter has LoRA rank {old_r}; this config's rank {new_r} cannot hold it")
    new_scale = model.peft.peft_config["default"].lora_alpha / new_r
    ratio = (float(lora["alpha"]) / int(lora["r"])) / new_scale
    if new_r == old_r and ratio == 1.0:
        return sd
    out = {}
    for k, v in sd.items():
        if "lora_A" not in k and "lora_B" not in k:
            out[k] = v
            continue
        t = target[k].detach().clone().to(v.dtype)
        if "lora_A" in k:
            t[:old_r] = v
        elif "lora_B" in k:
            t.zero_()
            t[:, :old_r] = v * ratio
        out[k] = t
    log(f"LoRA rank {old_r} widened to {new_r}")
    return out


def autocast(cfg: TrainConfig):
    import contextlib

    import torch

    if cfg.autocast == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_batch(cfg: TrainConfig, seqs) -> dict:
    from .torch_tagger import collate, pack

    if cfg.pack_len:
        return pack(seqs, cfg.pack_len)
    b = collate(seqs)
    b["tokens"] = int(b["attn"].sum())
    return b


def make_optimizer(cfg: TrainConfig, model):
    import torch

    full = {id(lin.weight) for lin, _ in model.full.values()}
    lora = [p for n, p in model.named_parameters() if p.requires_grad and n != "marker_emb" and id(p) not in full]
    groups = [{"params": lora, "lr": cfg.lr}, {"params": [model.marker_emb], "lr": cfg.marker_lr or cfg.lr}]
    if full:
        groups.append({"params": [lin.weight for lin, _ in model.full.values()],
                       "lr": cfg.unfreeze.get("lr", cfg.lr)})
    return torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)


def train_step(cfg: TrainConfig, model, opt, base_lrs, step: int, micro_batches) -> dict:
    """One optimizer step over ``grad_accum`` micro-batches: the LR schedule, the mean loss over
    micro-batches, gradient clipping at 1.0. Shared by training and --precision-check."""
    import torch

    set_lr(opt, base_lrs, lr_at(cfg, step))
    opt.zero_grad(set_to_none=True)
    losses, toks = [], 0
    for batch in micro_batches:
        with autocast(cfg):
            loss, _ = model.loss(batch)
        (loss / len(micro_batches)).backward()
        losses.append(loss.item())
        toks += batch["tokens"]
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
    opt.step()
    return {"loss": sum(losses) / len(losses), "tokens": toks}


# --- learning curve --------------------------------------------------------------------------------
def curve_sample(cfg: TrainConfig, corpus: str) -> list:
    """The curve's fixed sample of one dev set: ``curve.sample`` sentences (seeded), each with its
    gold word spans under the corpus's own instruction."""
    from biotag.runtime import corpora
    from biotag.runtime.prompting import Task

    from .llm_data import doc_examples

    task = Task.for_corpus(corpus, cfg.format)
    exs = [e for d in corpora.load(corpus, "dev", resolve(cfg.data_dir)) for e in doc_examples(d, task)]
    rng = random.Random(f"{cfg.curve.get('seed', 1)}/{corpus}")
    return rng.sample(exs, min(cfg.curve.get("sample", 50), len(exs)))


def curve_point(cfg: TrainConfig, model, table, samples: dict) -> dict[str, float]:
    """Strict span F1 (word level) of each curve dataset's fixed dev sample, decoded by the
    copy-constrained decoder over the PyTorch model, each corpus with its own instruction."""
    import torch

    from biotag.runtime.decoding import ConstrainedDecoder, tag_words

    from .torch_tagger import CachedTorchBackend

    out = {}
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for corpus in cfg.curve.get("datasets", []):
            if corpus not in samples:
                samples[corpus] = curve_sample(cfg, corpus)
            dec = ConstrainedDecoder(CachedTorchBackend(model), table, speculative=True)
            tp = fp = fn = 0
            for ex in samples[corpus]:
                pred, gold = set(tag_words(dec, ex.task, ex.words)), set(ex.spans)
                tp, fp, fn = tp + len(pred & gold), fp + len(pred - gold), fn + len(gold - pred)
            out[corpus] = round(200 * tp / max(1, 2 * tp + fp + fn), 2)
    model.train(was_training)
    return out


def append_curve(path: Path, row: dict) -> None:
    import csv

    new = not path.exists()
    with path.open("a", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)


def draw_curve(csv_path: Path, png: Path, continuations: tuple[Path, ...] = ()) -> Path:
    """The learning curve: dev F1 per corpus (and their mean) against examples seen; the points of
    a run's continuations follow its own, each start marked by a dashed line."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader(csv_path.open(encoding="utf-8")))
    if not rows:
        raise SystemExit(f"{csv_path}: no curve points yet")
    starts = []
    for cont in continuations:
        more = list(csv.DictReader(Path(cont).open(encoding="utf-8")))
        if more and int(more[0]["examples"]) <= int(rows[-1]["examples"]):
            raise SystemExit(f"{cont}: its points do not follow {csv_path}'s")
        starts.append(int(rows[-1]["examples"]) / 1000)
        rows += more
    skip = {"step", "examples", "wall_s", "train_loss", "mean_f1"}
    corpora = [k for k in rows[0] if k not in skip]
    x = [int(r["examples"]) / 1000 for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    colors = plt.cm.tab20.colors
    for k, c in enumerate(corpora):
        ax.plot(x, [float(r[c]) for r in rows], marker=".", linewidth=1, label=c,
                color=colors[(2 * k) % 20 if k < 10 else (2 * k + 1) % 20])
    ax.plot(x, [float(r["mean_f1"]) for r in rows], color="black", linewidth=2.5, label="mean")
    for k, at in enumerate(starts):
        ax.axvline(at, color="grey", linestyle="--", linewidth=1, label="continuation" if k == 0 else None)
    ax.set_xlabel("training examples seen (thousands)")
    ax.set_ylabel("dev F1 (seeded sample)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    fig.tight_layout()
    fig.savefig(png)
    return png


# --- checkpoints ---------------------------------------------------------------------------------
def save_ckpt(path: Path, model, opt, step: int, raw: dict, extra: dict) -> None:
    save_checkpoint(path, {"step": step, "trainable": model.trainable_state(), "opt": opt.state_dict(),
                           "config_hash": config_hash(raw), **extra})


def save_state(run_dir: Path, model, step: int, raw: dict, extra: dict) -> None:
    """The small state git carries so a run continues on another machine: LoRA + marker rows in
    bf16 (``state.safetensors``) and ``state.json``; the optimizer moments are not kept."""
    import torch
    from safetensors.torch import save_file

    sd = {k: v.to(torch.bfloat16).contiguous() for k, v in model.trainable_state().items()}
    replace_atomically(run_dir / "state.safetensors", lambda tmp: save_file(sd, str(tmp)))
    (run_dir / "state.json").write_text(json.dumps({"step": step, "config_hash": config_hash(raw), **extra},
                                                   indent=1) + "\n", encoding="utf-8")


def save_artifacts(out: Path, model, cfg: TrainConfig, raw: dict, table, gaz: dict, info: dict) -> None:
    from safetensors.torch import save_file

    from .llm_data import save_gazetteer
    from .torch_tagger import LORA_TARGETS

    import torch

    out.mkdir(parents=True, exist_ok=True)
    sd = {k: (v.to(torch.bfloat16) if k.startswith("full.") else v).contiguous()
          for k, v in model.trainable_state().items()}
    save_file(sd, str(out / "adapter.safetensors"))
    save_gazetteer(gaz, out / "gazetteer.tsv")
    meta = {"training_config": raw, "marker_ids": table.marker_ids, "lora_targets": list(LORA_TARGETS), **info}
    (out / "config.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# --- the run -------------------------------------------------------------------------------------
def load_training_data(cfg: TrainConfig):
    """(token table, mixture with its dictionary examples, gazetteer), after setting the torch
    threads: what training and ``precision_check`` draw their batches from."""
    import torch

    from .gemma import token_table

    torch.set_num_threads(cfg.threads or os.cpu_count() or 2)
    table = token_table()
    mix = load_mixture(cfg, table)
    gaz = add_dictionary(cfg, mix)
    return table, mix, gaz


def setup(cfg: TrainConfig):
    """(token table, mixture, gazetteer, model) of a run."""
    table, mix, gaz = load_training_data(cfg)
    return table, mix, gaz, build_model(cfg, table)


def resume_state(cfg: TrainConfig, raw: dict, model, opt, table) -> tuple[int, float, int]:
    """(step, wall seconds so far, examples seen) from the checkpoint, else from the committed
    small state, else a warm start from ``init_adapter``, else the beginning."""
    run_dir = cfg.run_path
    ckpt, state = run_dir / "ckpt.pt", run_dir / "state.json"
    if ckpt.exists():
        s = load_checkpoint(ckpt)
        refuse_other_run(ckpt, s.get("config_hash") == config_hash(raw))
        model.load_trainable_state(s["trainable"])
        opt.load_state_dict(s["opt"])
        log(f"resumed from {ckpt} at step {s['step']}")
        return s["step"], s.get("wall_s", 0.0), s.get("examples", s["step"] * cfg.batch_size * cfg.grad_accum)
    if state.exists():
        from safetensors.torch import load_file

        s = json.loads(state.read_text(encoding="utf-8"))
        refuse_other_run(state, s.get("config_hash") == config_hash(raw))
        model.load_trainable_state({k: v.float() for k, v in load_file(str(run_dir / "state.safetensors")).items()})
        log(f"resumed from {state} at step {s['step']} (LoRA weights; fresh optimizer moments)")
        return s["step"], s.get("wall_s", 0.0), s.get("examples", 0)
    return fresh_start(cfg, model, table)


def fresh_start(cfg: TrainConfig, model, table) -> tuple[int, float, int]:
    """A run's first (step, wall seconds, examples seen): ``start_step`` (0 unless it continues
    another run), after a warm start from ``init_adapter`` where one is set."""
    if cfg.init_adapter:
        load_adapter_into(model, table, resolve(cfg.init_adapter))
    return cfg.start_step, 0.0, cfg.start_step * cfg.batch_size * cfg.grad_accum


def pause_on_signal() -> list:
    """SIGTERM or Ctrl-C pauses the run: the current step finishes, a checkpoint is written, the
    process exits; ``--resume`` continues. Returns a list that is non-empty once asked to stop."""
    import signal

    stop: list = []

    def handler(signum, frame):
        if stop:                      # a second signal: stop at once
            raise KeyboardInterrupt
        stop.append(signal.Signals(signum).name)
        log(f"{stop[0]}: pausing after this step")

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
    return stop


def train(cfg: TrainConfig, raw: dict, resume: bool = False, max_steps: int | None = None) -> Path:
    import torch

    from .gemma import base_gguf_path

    run_dir = cfg.run_path
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume and (run_dir / "ckpt.pt").exists():
        raise SystemExit(f"{run_dir} holds a run; continue it with --resume or choose another run_dir")
    (run_dir / "config.json").write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")
    table, mix, gaz, model = setup(cfg)
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log(f"model: {n_train / 1e6:.2f}M trainable parameters, base weights {cfg.weights}, "
        f"pack_len {cfg.pack_len or 'off'}, config {config_hash(raw)}")
    opt = make_optimizer(cfg, model)
    base_lrs = [g["lr"] for g in opt.param_groups]
    if resume:
        step, wall0, examples = resume_state(cfg, raw, model, opt, table)
    else:
        step, wall0, examples = fresh_start(cfg, model, table)
    total = cfg.steps if max_steps is None else min(cfg.steps, max_steps)
    model.train()
    t_start = t_ckpt = t_log = time.time()
    curve_s, last_loss = 0.0, float("nan")
    losses, toks, n_ex = [], 0, 0
    every = cfg.curve.get("every", 0)
    samples: dict = {}

    def record_curve():
        t0 = time.time()
        f1 = curve_point(cfg, model, table, samples)
        append_curve(run_dir / "curve.csv", {
            "step": step, "examples": examples, "wall_s": round(wall0 + time.time() - t_start),
            "train_loss": round(last_loss, 4), **f1, "mean_f1": round(sum(f1.values()) / max(1, len(f1)), 2)})
        log(f"curve at step {step}: mean dev F1 {sum(f1.values()) / max(1, len(f1)):.2f} "
            f"({time.time() - t0:.0f} s) {f1}")
        return time.time() - t0

    # the starting point (a warm start's model, or the base); a continuation's is its parent's last
    if every and step == 0 and not (run_dir / "curve.csv").exists():
        curve_s += record_curve()
    stop = pause_on_signal()
    while step < total and not stop:
        micro = [make_batch(cfg, batch_at(cfg, step, m, mix, table, cfg.max_len)) for m in range(cfg.grad_accum)]
        r = train_step(cfg, model, opt, base_lrs, step, micro)
        step += 1
        examples += cfg.batch_size * cfg.grad_accum
        losses.append(r["loss"])
        toks += r["tokens"]
        n_ex += cfg.batch_size * cfg.grad_accum
        if step % cfg.log_every == 0 or step == total:
            dt = time.time() - t_log
            log(f"step {step}/{total} loss {sum(losses) / len(losses):.4f} lr {opt.param_groups[0]['lr']:.2e} "
                f"{n_ex / dt:.2f} ex/s {toks / dt:.0f} real tok/s {dt / len(losses):.2f} s/step "
                f"ETA {(total - step) * dt / len(losses) / 60:.1f} min")
            last_loss = sum(losses) / len(losses)
            losses, toks, n_ex, t_log = [], 0, 0, time.time()
        if every and (step % every == 0 or step == total):
            curve_s += record_curve()
            t_log = time.time()
        if time.time() - t_ckpt > cfg.ckpt_minutes * 60 or step == total or stop or \
                (every and step % every == 0):
            info = {"wall_s": wall0 + time.time() - t_start, "examples": examples}
            save_ckpt(run_dir / "ckpt.pt", model, opt, step, raw, info)
            save_state(run_dir, model, step, raw, info)
            t_ckpt = time.time()
            log(f"checkpoint {run_dir / 'ckpt.pt'} at step {step}")
    if stop:
        log(f"paused at step {step} ({stop[0]}); continue with --resume")
    wall = wall0 + time.time() - t_start
    out = cfg.artifact_path
    if step >= cfg.steps:
        save_artifacts(out, model, cfg, raw, table, gaz, {
            "base_model": str(base_gguf_path().name), "steps": step, "examples": examples,
            "wall_s": round(wall, 1), "hardware": f"{os.cpu_count()} CPU threads, torch {torch.__version__}"})
        log(f"artifacts written to {out}")
    return out


def export_state(cfg: TrainConfig, raw: dict, out: Path | None = None) -> Path:
    """Write the run's current weights (its checkpoint, else its committed small state) as an
    adapter folder — what ``biotag export`` and ``biotag train eval`` read — without finishing
    the schedule: a snapshot to evaluate or ship."""
    import torch

    from .gemma import base_gguf_path

    table, mix, gaz, model = setup(cfg)
    opt = make_optimizer(cfg, model)
    if not any((cfg.run_path / f).exists() for f in ("ckpt.pt", "state.json")):
        raise SystemExit(f"{cfg.run_path}: no checkpoint or state to export")
    step, wall, examples = resume_state(cfg, raw, model, opt, table)
    out = out or cfg.artifact_path
    save_artifacts(out, model, cfg, raw, table, gaz, {
        "base_model": str(base_gguf_path().name), "steps": step, "examples": examples,
        "wall_s": round(wall, 1), "snapshot_of_run": config_hash(raw),
        "hardware": f"{os.cpu_count()} CPU threads, torch {torch.__version__}"})
    log(f"step {step} ({examples} examples) written to {out}")
    return out


def precision_check(cfg: TrainConfig, steps: int, held_out: int = 4, ref: TrainConfig | None = None) -> dict:
    """Train ``steps`` steps twice from the same start on the same batches (drawn by ``cfg``): the
    reference (``ref``; default: ``cfg`` with fp32 weights and padded batches) and the configured
    path. Reports s/step, examples/s, real tokens/s, the losses and each result's loss on
    ``held_out`` unseen batches."""
    import torch

    ref = ref or dataclasses.replace(cfg, weights="fp32", autocast="fp32", pack_len=0)
    out = {"steps": steps, "threads": cfg.threads or os.cpu_count(), "modes": {}}
    table, mix, _ = load_training_data(cfg)
    seqs = [[batch_at(cfg, s, m, mix, table, cfg.max_len) for m in range(cfg.grad_accum)] for s in range(steps)]
    held = [batch_at(cfg, cfg.steps + 1000 + k, 0, mix, table, cfg.max_len) for k in range(held_out)]
    init = None
    for label, c in (("reference", ref), ("configured", cfg)):
        model = build_model(c, table)
        if init is None:
            init = {k: v.clone() for k, v in model.trainable_state().items()}
        model.load_trainable_state(init)
        opt = make_optimizer(c, model)
        base_lrs = [g["lr"] for g in opt.param_groups]
        model.train()
        losses, toks, t0 = [], 0, time.time()
        for s in range(steps):
            r = train_step(c, model, opt, base_lrs, s, [make_batch(c, b) for b in seqs[s]])
            losses.append(round(r["loss"], 5))
            toks += r["tokens"]
        dt = time.time() - t0
        model.eval()
        with torch.no_grad(), autocast(c):
            held_loss = sum(model.loss(make_batch(c, b))[0].item() for b in held) / max(1, len(held))
        out["modes"][label] = {"weights": c.weights, "autocast": c.autocast, "pack_len": c.pack_len,
                               "attention": c.attention, "lora_compute": c.lora_compute,
                               "compile": c.compile,
                               "s_per_step": round(dt / steps, 3),
                               "examples_per_s": round(steps * c.batch_size * c.grad_accum / dt, 2),
                               "real_tokens_per_s": round(toks / dt), "losses": losses,
                               "held_out_loss": round(held_loss, 5)}
        log(f"precision check {label}: {dt / steps:.2f} s/step, held-out {held_loss:.4f}")
        del model, opt
    m = out["modes"]
    out["speedup"] = round(m["configured"]["examples_per_s"] / m["reference"]["examples_per_s"], 2)
    return out


def main(argv=None) -> int:
    """``python -m biotag.models.train_llm``: ``biotag train llm`` with the same arguments."""
    from .cli import main as train_cli

    return train_cli("llm", argv)


def run_cli(a) -> int:
    """``biotag train llm`` with its parsed arguments."""
    if getattr(a, "curve_png", None):
        paths = [Path(c) for c in a.curve_png]
        print(draw_curve(paths[0], paths[-1].with_suffix(".png"), tuple(paths[1:])))
        return 0
    if not a.config:
        raise SystemExit("--config is required")
    cfg, raw = load_config(a.config)
    if getattr(a, "export_state", None):
        export_state(cfg, raw, Path(a.export_state))
        return 0
    if a.precision_check:
        ref = load_config(a.reference)[0] if getattr(a, "reference", None) else None
        print(json.dumps(precision_check(cfg, a.precision_check, ref=ref), indent=1))
        return 0
    train(cfg, raw, a.resume, a.max_steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
