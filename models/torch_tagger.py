"""The tagging LLM in PyTorch: Gemma 3 + LoRA + trainable marker-token embeddings.

The shared 262k x 640 embedding (also the output matrix) stays frozen; only the rows of the marker
tokens (<unused0..>, see runtime.codec) are trained, as a separate small parameter. The loss is the
cross-entropy of the choice made at each decision point over the allowed candidates only (the copy
token or a valid marker), exactly the choice the constrained decoder makes at run time.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ATTENTION_PROJ = ("q_proj", "k_proj", "v_proj", "o_proj")


class InputDtypeLinear(nn.Linear):
    """A LoRA factor (A or B) that computes in its input's dtype: the small fp32 weight is cast to
    bf16 for the matmul (its gradient comes back in fp32), instead of casting every bf16 activation
    row to fp32 and the product back."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight.to(x.dtype), None if self.bias is None else self.bias.to(x.dtype))


def lora_in_input_dtype(peft_model) -> int:
    """Make every LoRA layer of ``peft_model`` compute in its input's dtype (bf16 under bf16 base
    weights): peft's input cast is switched off and the factors become ``InputDtypeLinear``. The
    weights, their state-dict keys and their fp32 storage are unchanged. Returns the layers changed."""
    n = 0
    for module in peft_model.modules():
        if hasattr(module, "lora_A") and hasattr(module, "cast_input_dtype_enabled"):
            module.cast_input_dtype_enabled = False
            for factor in (*module.lora_A.values(), *module.lora_B.values()):
                if type(factor) is nn.Linear:
                    factor.__class__ = InputDtypeLinear
            n += 1
    return n


def compile_layers(body, backend: str = "inductor") -> int:
    """``torch.compile`` (dynamic shapes) every decoder layer of ``body`` for calls that record
    gradients: the training steps, where fusing the elementwise work around the matmuls pays. Calls
    without gradients (decoding with a KV cache, held-out losses) run the eager layer, so they never
    trigger a compile of their own. Compiling happens at the first training step. Returns the
    layers wrapped."""

    def dispatch(eager, compiled):
        def forward(*args, **kwargs):
            return (compiled if torch.is_grad_enabled() else eager)(*args, **kwargs)
        return forward

    for layer in body.layers:
        layer.forward = dispatch(layer.forward, torch.compile(layer.forward, dynamic=True, backend=backend))
    return len(body.layers)


class TaggerLM(nn.Module):
    def __init__(self, base, marker_ids: Sequence[int], lora_r: int = 16, lora_alpha: int = 32,
                 lora_dropout: float = 0.05, init_rows: dict[int, Sequence[int]] | None = None,
                 peft_model=None):
        super().__init__()
        from peft import LoraConfig, get_peft_model

        if peft_model is None:
            cfg = LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                             target_modules=LORA_TARGETS, bias="none")
            peft_model = get_peft_model(base, cfg)
        from .segment_attention import register

        register()                                  # "segments" is a valid attention implementation
        self.peft = peft_model
        lm = self.peft.base_model.model            # Gemma3ForCausalLM
        self.body = lm.model                        # Gemma3TextModel
        self.embed = self.body.embed_tokens
        self.out_w = lm.lm_head.weight             # tied to the embedding, frozen
        self.marker_ids = list(marker_ids)
        w = self.embed.weight.detach()
        init = torch.stack([
            w[list(init_rows[m])].mean(0) if init_rows and m in init_rows else w[m]
            for m in self.marker_ids
        ]).clone()
        self.marker_emb = nn.Parameter(init)
        lookup = torch.full((w.shape[0],), -1, dtype=torch.long)
        lookup[torch.tensor(self.marker_ids)] = torch.arange(len(self.marker_ids))
        self.register_buffer("lookup", lookup, persistent=False)
        self.full: dict[str, tuple[nn.Linear, torch.Tensor]] = {}   # unfreeze_top: name -> (linear, start)

    def projection(self, layer: int, proj: str) -> nn.Linear:
        """The frozen base ``nn.Linear`` of projection ``proj`` (one of ``LORA_TARGETS``) in decoder
        layer ``layer`` (under its LoRA wrapper)."""
        block = self.body.layers[layer]
        lin = getattr(block.self_attn if proj in ATTENTION_PROJ else block.mlp, proj)
        return getattr(lin, "base_layer", lin)

    def unfreeze_top(self, k: int) -> list[str]:
        """Train the seven projection weights of the top ``k`` decoder layers in full, next to their
        LoRA: fp32 master weights, computed in the input's dtype (bf16 matmuls under bf16 base
        weights). Their updates travel as ``full.<layer>.<proj>`` deltas in ``trainable_state``.
        Returns the delta names."""
        n = len(self.body.layers)
        if not 0 <= k <= n:
            raise ValueError(f"cannot unfreeze {k} of {n} layers")
        for i in range(n - k, n):
            for proj in LORA_TARGETS:
                lin = self.projection(i, proj)
                w0 = lin.weight.detach().float().clone()
                lin.weight = nn.Parameter(w0.clone())
                if type(lin) is nn.Linear:
                    lin.__class__ = InputDtypeLinear
                self.full[f"full.{i}.{proj}"] = (lin, w0)
        return list(self.full)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        from peft import get_peft_model_state_dict

        sd = {k: v.detach().clone() for k, v in get_peft_model_state_dict(self.peft).items()}
        sd["marker_emb"] = self.marker_emb.detach().clone()
        for name, (lin, w0) in self.full.items():
            sd[name] = lin.weight.detach().float() - w0
        return sd

    def load_trainable_state(self, sd: dict[str, torch.Tensor]) -> None:
        """LoRA weights, marker rows and full-weight deltas. A delta of a layer this model trains
        in full sets its master weight to the starting weight + delta; in a model that does not,
        the delta is added to the frozen base weight."""
        from peft import set_peft_model_state_dict

        sd = dict(sd)
        with torch.no_grad():
            self.marker_emb.copy_(sd.pop("marker_emb"))
            for name in [k for k in sd if k.startswith("full.")]:
                delta = sd.pop(name)
                if name in self.full:
                    lin, w0 = self.full[name]
                    lin.weight.copy_(w0 + delta.float())
                else:
                    _, layer, proj = name.split(".")
                    w = self.projection(int(layer), proj).weight
                    w.copy_((w.float() + delta.float()).to(w.dtype))
        set_peft_model_state_dict(self.peft, sd)

    def embed_inputs(self, ids: torch.Tensor) -> torch.Tensor:
        """Input embeddings, with the trained rows of the marker tokens in place of the frozen ones."""
        x = self.embed(ids)
        rows = self.lookup[ids]
        m = rows >= 0
        if m.any():
            scale = self.embed.embed_scale.to(x.dtype)
            x = x.clone()
            x[m] = self.marker_emb[rows[m]].to(x.dtype) * scale
        return x

    def hidden(self, ids: torch.Tensor, attn: torch.Tensor | None,
               pos_ids: torch.Tensor | None = None, segments=None) -> torch.Tensor:
        """Last hidden states. Packed rows pass ``pos_ids`` (restarting at 0 for every sequence)
        and no ``attn``: transformers then builds the block-diagonal causal mask from them. Under
        the ``"segments"`` attention implementation, packed rows that also pass ``segments`` (the
        lengths of each row's sequences, ``pack``) build no mask: each sequence is attended on its
        own (``segment_attention``)."""
        from .segment_attention import NAME, no_masks, plan_segments

        x = self.embed_inputs(ids)
        cfg = self.body.config
        if pos_ids is not None and segments is not None and cfg._attn_implementation == NAME:
            out = self.body(inputs_embeds=x, position_ids=pos_ids, attention_mask=no_masks(cfg), use_cache=False,
                            segments=plan_segments(segments, ids.shape[1]))
        elif pos_ids is not None:
            out = self.body(inputs_embeds=x, position_ids=pos_ids, use_cache=False)
        else:
            out = self.body(inputs_embeds=x, attention_mask=attn, use_cache=False)
        return out.last_hidden_state

    def cand_weights(self, cand: torch.Tensor) -> torch.Tensor:
        w = self.out_w[cand.clamp(min=0)].float()
        rows = self.lookup[cand.clamp(min=0)]
        m = rows >= 0
        if m.any():
            w = w.clone()
            w[m] = self.marker_emb[rows[m]].to(w.dtype)
        return w

    def cand_logits(self, h: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
        """h: (N, D) hidden states; cand: (N, C) token ids, -1 = padding -> (N, C) logits."""
        logits = torch.einsum("nd,ncd->nc", h.float(), self.cand_weights(cand))
        return logits.masked_fill(cand < 0, float("-inf"))

    def loss(self, batch: dict) -> tuple[torch.Tensor, int]:
        h = self.hidden(batch["ids"], batch.get("attn"), batch.get("pos_ids"), batch.get("segments"))
        hp = h[batch["b_idx"], batch["pos"]]
        logits = self.cand_logits(hp, batch["cand"])
        return nn.functional.cross_entropy(logits.float(), batch["gold"]), int(batch["gold"].numel())


def collate(seqs, pad_id: int = 0) -> dict:
    """Sequence_ list -> padded tensors (right padding)."""
    T = max(len(s.ids) for s in seqs)
    C = max(len(c) for s in seqs for c in s.candidates) if any(s.candidates for s in seqs) else 1
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    attn = torch.zeros((len(seqs), T), dtype=torch.long)
    b_idx, pos, cand, gold = [], [], [], []
    for b, s in enumerate(seqs):
        ids[b, : len(s.ids)] = torch.tensor(s.ids)
        attn[b, : len(s.ids)] = 1
        for p, c, g in zip(s.positions, s.candidates, s.gold):
            b_idx.append(b)
            pos.append(p)
            cand.append(list(c) + [-1] * (C - len(c)))
            gold.append(g)
    return {"ids": ids, "attn": attn, "b_idx": torch.tensor(b_idx, dtype=torch.long),
            "pos": torch.tensor(pos, dtype=torch.long),
            "cand": torch.tensor(cand, dtype=torch.long).reshape(-1, C),
            "gold": torch.tensor(gold, dtype=torch.long)}


def pack(seqs, pack_len: int, pad_id: int = 0) -> dict:
    """Sequence_ list -> rows of at most ``pack_len`` tokens, several sequences per row (first-fit
    decreasing), right-padded to the longest row. Positions restart at 0 for every sequence, so
    attention stays inside it: the same loss as ``collate`` with far less padding. A sequence
    longer than ``pack_len`` gets a row of its own. ``segments``: the lengths of each row's
    sequences, in row order."""
    order = sorted(range(len(seqs)), key=lambda k: -len(seqs[k].ids))
    rows: list[list[int]] = []
    used: list[int] = []
    for k in order:
        n = len(seqs[k].ids)
        for r in range(len(rows)):
            if used[r] + n <= pack_len:
                rows[r].append(k)
                used[r] += n
                break
        else:
            rows.append([k])
            used.append(n)
    T = max(used)
    C = max((len(c) for s in seqs for c in s.candidates), default=1)
    ids = torch.full((len(rows), T), pad_id, dtype=torch.long)
    pos_ids = torch.zeros((len(rows), T), dtype=torch.long)
    b_idx, pos, cand, gold = [], [], [], []
    segments = [[len(seqs[k].ids) for k in sorted(members)] for members in rows]
    for r, members in enumerate(rows):
        off = 0
        for k in sorted(members):          # keep the batch's order inside a row
            s = seqs[k]
            n = len(s.ids)
            ids[r, off: off + n] = torch.tensor(s.ids)
            pos_ids[r, off: off + n] = torch.arange(n)
            for p, c, g in zip(s.positions, s.candidates, s.gold):
                b_idx.append(r)
                pos.append(off + p)
                cand.append(list(c) + [-1] * (C - len(c)))
                gold.append(g)
            off += n
        pos_ids[r, off:] = torch.arange(T - off)   # padding: a sequence of its own, never attended
    return {"ids": ids, "pos_ids": pos_ids, "b_idx": torch.tensor(b_idx, dtype=torch.long),
            "pos": torch.tensor(pos, dtype=torch.long),
            "cand": torch.tensor(cand, dtype=torch.long).reshape(-1, C),
            "gold": torch.tensor(gold, dtype=torch.long), "tokens": int(sum(used)), "segments": segments}


class CachedTorchBackend:
    """Decoding backend over the PyTorch model with a KV cache (transformers' DynamicCache):
    each call feeds only the new tokens; a rollback crops the cache. Same scores as TorchBackend
    up to float rounding, many times faster on long prompts."""

    def __init__(self, model: TaggerLM):
        self.model = model
        self.seq: list[int] = []
        self.cache = None

    def reset(self) -> None:
        self.seq, self.cache = [], None

    @torch.no_grad()
    def append(self, tokens, queries):
        from transformers import DynamicCache

        start = len(self.seq)
        self.seq.extend(tokens)
        if self.cache is None:
            self.cache = DynamicCache()
        m = self.model
        x = m.embed_inputs(torch.tensor([list(tokens)]))
        pos = torch.arange(start, start + len(tokens))
        h = m.body(inputs_embeds=x, past_key_values=self.cache, use_cache=True,
                   position_ids=pos[None], cache_position=pos).last_hidden_state[0]
        return {k: m.cand_logits(h[k][None], torch.tensor([list(c)]))[0].float().numpy()
                for k, c in queries.items()}

    def rollback(self, n: int) -> None:
        if n > 0:
            self.seq = self.seq[:-n]
            self.cache.crop(len(self.seq))


class TorchBackend:
    """Decoding backend for runtime.decoding over the PyTorch model (recomputes the prefix each
    call: simple and exact; fine for evaluation of short sentences)."""

    def __init__(self, model: TaggerLM):
        self.model = model
        self.seq: list[int] = []

    def reset(self) -> None:
        self.seq = []

    @torch.no_grad()
    def append(self, tokens, queries):
        start = len(self.seq)
        self.seq.extend(tokens)
        if not queries:
            return {}
        ids = torch.tensor([self.seq])
        h = self.model.hidden(ids, torch.ones_like(ids))[0]
        out = {}
        for k, c in queries.items():
            cand = torch.tensor([list(c)])
            out[k] = self.model.cand_logits(h[start + k][None], cand)[0].float().numpy()
        return out

    def rollback(self, n: int) -> None:
        if n > 0:
            self.seq = self.seq[:-n]
