"""The selector network (PyTorch): a BERT encoder reading ``type prefix [SEP] marked context``, a
head on the ``[E]`` marker token (optionally with [CLS] or ``[/E]``) giving one logit, the losses
(BCE + supervised contrastive), batching with the transformers tokenizer, save/load.

Folder layout written by :func:`save_selector` (the "HF folder")::

    config.json, model.safetensors          the encoder (BertModel.save_pretrained)
    head.safetensors                        head (+ contrastive projection) weights
    selector.json                           head kind, marker ids, max_len, context_words, ...
    tokenizer.json (+ tokenizer_config.json, special_tokens_map.json, vocab.txt)
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from biotag.runtime.selector import (DEFAULT_CONTEXT_WORDS, DEFAULT_MAX_LEN, FORMAT_VERSION, MARK_CLOSE,
                                     MARK_OPEN, build_input)

HEADS = ("start", "cls_start", "start_end")


class SelectorModel(nn.Module):
    def __init__(self, encoder, open_id: int, close_id: int, head: str = "start", proj_dim: int = 128,
                 dropout: float = 0.1):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r} (one of {HEADS})")
        self.encoder = encoder
        self.head_kind = head
        self.open_id, self.close_id = int(open_id), int(close_id)
        h = encoder.config.hidden_size
        n_in = h * (1 if head == "start" else 2)
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(n_in, h)
        self.out = nn.Linear(h, 1)
        self.proj = nn.Linear(n_in, proj_dim)   # contrastive projection (training only)

    def _pick(self, hidden: torch.Tensor, input_ids: torch.Tensor, token_id: int) -> torch.Tensor:
        # first position of token_id (argmax of a 0/1 mask picks the first maximum; [CLS] if absent)
        pos = (input_ids == token_id).to(torch.float32).argmax(dim=1)
        idx = pos.view(-1, 1, 1).expand(-1, 1, hidden.size(-1))
        return hidden.gather(1, idx).squeeze(1)

    def features(self, input_ids, attention_mask, token_type_ids) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state
        rep = self._pick(hidden, input_ids, self.open_id)
        if self.head_kind == "cls_start":
            rep = torch.cat([hidden[:, 0], rep], dim=-1)
        elif self.head_kind == "start_end":
            rep = torch.cat([rep, self._pick(hidden, input_ids, self.close_id)], dim=-1)
        return rep

    def logits_from(self, rep: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.dense(self.dropout(rep)))).squeeze(-1)

    def forward(self, input_ids, attention_mask, token_type_ids) -> torch.Tensor:
        return self.logits_from(self.features(input_ids, attention_mask, token_type_ids))

    def head_state(self) -> dict:
        return {k: v for k, v in self.state_dict().items() if not k.startswith("encoder.")}


# --- losses ------------------------------------------------------------------------------------
def supcon_loss(z: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor, tau: float = 0.1,
                negatives: str = "group") -> torch.Tensor:
    """Supervised contrastive term over gold anchors: each gold span is pulled towards the other
    gold spans of the batch and pushed away from its own group's negatives (its boundary
    variants, wrong types, overlapping LLM errors; ``negatives="batch"``: every negative of the
    batch). ``z``: (B, d) projections; returns 0 when no anchor has both a positive and a
    negative."""
    z = F.normalize(z, dim=-1)
    sim = z @ z.t() / tau
    pos = labels.bool()
    eye = torch.eye(len(z), dtype=torch.bool, device=z.device)
    pos_mask = pos[:, None] & pos[None, :] & ~eye
    neg_mask = pos[:, None] & ~pos[None, :]
    if negatives == "group":
        neg_mask = neg_mask & (groups[:, None] == groups[None, :]) & (groups[:, None] >= 0)
    keep = pos & pos_mask.any(1) & neg_mask.any(1)
    if not bool(keep.any()):
        return z.sum() * 0.0
    denom_mask = pos_mask | neg_mask
    sim = sim.masked_fill(~denom_mask, float("-inf"))
    log_den = torch.logsumexp(sim, dim=1, keepdim=True)
    log_prob = (sim - log_den).masked_fill(~pos_mask, 0.0)
    per_anchor = -log_prob.sum(1) / pos_mask.sum(1).clamp(min=1)
    return per_anchor[keep].mean()


def selector_loss(model: SelectorModel, batch: dict, contrastive_weight: float = 0.1, tau: float = 0.1,
                  negatives: str = "group") -> tuple[torch.Tensor, dict]:
    rep = model.features(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    logits = model.logits_from(rep)
    labels = batch["labels"].to(logits.dtype)
    bce = F.binary_cross_entropy_with_logits(logits, labels)
    loss = bce
    parts = {"bce": float(bce.detach())}
    if contrastive_weight > 0:
        con = supcon_loss(model.proj(rep), batch["labels"], batch["groups"], tau, negatives)
        loss = loss + contrastive_weight * con
        parts["con"] = float(con.detach())
    return loss, parts


# --- batching ------------------------------------------------------------------------------------
def encode_examples(tokenizer, examples: Sequence, max_len: int = DEFAULT_MAX_LEN,
                    context_words: int = DEFAULT_CONTEXT_WORDS, groups: Sequence[int] | None = None) -> dict:
    """Tensors for a list of SelExamples (or anything with type/text/start/end/label), tokenized
    with a transformers tokenizer exactly as the runtime tokenizes with ``tokenizers``."""
    pairs = [build_input(e.text, e.start, e.end, e.type, context_words)[:2] for e in examples]
    enc = tokenizer([p for p, _ in pairs], [m for _, m in pairs], truncation="only_second",
                    max_length=max_len, padding=True, return_tensors="pt")
    out = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
           "token_type_ids": enc["token_type_ids"],
           "labels": torch.tensor([int(getattr(e, "label", 0)) for e in examples], dtype=torch.long)}
    g = groups if groups is not None else [getattr(e, "group", -1) for e in examples]
    out["groups"] = torch.tensor(list(g), dtype=torch.long)
    return out


# --- building, saving, loading ----------------------------------------------------------------------
def hf_tokenizer(tok):
    """A transformers fast tokenizer around a ``tokenizers.Tokenizer`` (BERT specials, markers)."""
    from transformers import BertTokenizerFast

    return BertTokenizerFast(tokenizer_object=tok, do_lower_case=True, unk_token="[UNK]", sep_token="[SEP]",
                             pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]",
                             additional_special_tokens=[MARK_OPEN, MARK_CLOSE])


def init_new_embeddings(encoder, n_old: int, n_new_total: int, ref_ids: Sequence[int] | None = None,
                        seed: int = 0, noise: float = 0.5) -> None:
    """Grow the word embeddings to ``n_new_total`` rows; new rows = mean of the reference rows
    (the CJK characters the base vocabulary has, else all rows) + Gaussian noise of ``noise``
    times their per-dimension std."""
    emb = encoder.get_input_embeddings().weight.data[:n_old].clone()
    encoder.resize_token_embeddings(n_new_total, mean_resizing=False)
    if n_new_total <= n_old:
        return
    ref = emb[list(ref_ids)] if ref_ids else emb
    mean, std = ref.mean(0), ref.std(0) if len(ref) > 1 else emb.std(0)
    g = torch.Generator().manual_seed(seed)
    new = mean + noise * std * torch.randn(n_new_total - n_old, emb.size(1), generator=g)
    w = encoder.get_input_embeddings().weight.data
    w[:n_old] = emb
    w[n_old:] = new


def selector_info(model: SelectorModel, tokenizer, max_len: int, context_words: int, **extra) -> dict:
    return {"format_version": FORMAT_VERSION, "head": model.head_kind, "open_id": model.open_id,
            "close_id": model.close_id, "max_len": max_len, "context_words": context_words,
            "proj_dim": model.proj.out_features, "vocab_size": len(tokenizer), **extra}


def save_selector(model: SelectorModel, tokenizer, out: str | Path, max_len: int = DEFAULT_MAX_LEN,
                  context_words: int = DEFAULT_CONTEXT_WORDS, **extra) -> Path:
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.encoder.save_pretrained(out, safe_serialization=True)
    save_file({k: v.contiguous() for k, v in model.head_state().items()}, str(out / "head.safetensors"))
    tokenizer.save_pretrained(out)
    info = selector_info(model, tokenizer, max_len, context_words, **extra)
    (out / "selector.json").write_text(json.dumps(info, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return out


def load_selector(path: str | Path):
    """(model in eval mode, transformers tokenizer, info) from a folder written by save_selector."""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer, BertModel

    path = Path(path)
    info = json.loads((path / "selector.json").read_text(encoding="utf-8"))
    enc = BertModel.from_pretrained(path, add_pooling_layer=False)
    model = SelectorModel(enc, info["open_id"], info["close_id"], info["head"], info.get("proj_dim", 128))
    missing, unexpected = model.load_state_dict(load_file(str(path / "head.safetensors")), strict=False)
    bad = [k for k in missing if not k.startswith("encoder.")] + list(unexpected)
    if bad:
        raise ValueError(f"{path}/head.safetensors does not fit the head: {bad[:5]}")
    tok = AutoTokenizer.from_pretrained(path)
    model.eval()
    return model, tok, info


def tiny_encoder(vocab_size: int, seed: int = 0, hidden: int = 32, layers: int = 2, heads: int = 2):
    """A randomly initialised tiny BERT (tests)."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                     num_attention_heads=heads, intermediate_size=hidden * 2, max_position_embeddings=256)
    return BertModel(cfg, add_pooling_layer=False)
