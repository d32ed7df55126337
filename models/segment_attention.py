"""Attention over packed rows without a mask: ``"attention": "segments"``.

A packed row holds several sequences one after the other (``torch_tagger.pack``). Instead of one
attention call over the whole row under a block-diagonal causal mask, the queries, keys and values
of every sequence (a *segment*) are gathered into a batch of their own and attended with causal
SDPA and no mask (``is_causal=True``: torch's fused CPU kernel, which skips the blocks above the
diagonal). No key of another sequence is in a segment's batch, so attention cannot cross sequences
by construction, and the positions after the last sequence of a row (padding) are not attended at
all: their attention output is zero.

Segments are grouped by length, rounded up to a multiple of ``bucket`` tokens, and each group is
one SDPA call per layer; a segment shorter than its group's length is padded at its end, which
causal attention never lets a real query see. On a sliding-window layer a group longer than the
window is attended under an explicit banded causal mask (the window's exact semantics), so the
result is the same for every segment length.

Calls without segments (padded batches, KV-cached decoding) are computed exactly as ``"sdpa"``:
the same mask builder and the same attention function.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch.nn import functional as F

NAME = "segments"
BUCKET = 16      # a group's length: the segment lengths rounded up to a multiple of this


@dataclass(frozen=True)
class SegmentPlan:
    """Where the segments of a packed (B, T) batch lie, grouped for batched attention.

    ``groups``: (length L, flat index (n * L,) into the B * T positions) per group of n segments;
    a segment of m < L tokens repeats its last position L - m times. ``scatter``: for each of the
    B * T positions its row in the concatenated group outputs; positions outside every segment
    point one past the end (a zero row)."""

    shape: tuple[int, int]
    groups: tuple[tuple[int, torch.Tensor], ...]
    scatter: torch.Tensor

    @property
    def calls(self) -> int:
        """SDPA calls per attention layer."""
        return len(self.groups)


def plan_segments(lengths: Sequence[Sequence[int]], T: int, bucket: int | None = None) -> SegmentPlan:
    """The plan of a batch whose row r holds sequences of ``lengths[r]`` tokens from position 0,
    in that order, within T positions. ``bucket`` (default ``BUCKET``): group lengths are
    multiples of it (1: only segments of equal length share a call; 0: one call, every segment
    padded to the longest)."""
    bucket = BUCKET if bucket is None else bucket
    B = len(lengths)
    starts, sizes = [], []
    for r, row in enumerate(lengths):
        off = 0
        for n in row:
            if n < 1:
                raise ValueError("a segment needs at least one token")
            starts.append(r * T + off)
            sizes.append(n)
            off += n
        if off > T:
            raise ValueError(f"row {r} holds {off} tokens, more than its {T} positions")
    longest = max(sizes, default=1)
    padded = [longest if bucket == 0 else -(-n // bucket) * bucket for n in sizes]
    scatter = torch.full((B * T,), sum(padded), dtype=torch.long)
    groups, base = [], 0
    for L in sorted(set(padded)):
        members = [k for k, p in enumerate(padded) if p == L]
        start = torch.tensor([starts[k] for k in members])
        size = torch.tensor([sizes[k] for k in members])
        steps = torch.arange(L)
        groups.append((L, (start[:, None] + torch.minimum(steps[None], size[:, None] - 1)).reshape(-1)))
        for j, k in enumerate(members):
            scatter[starts[k]: starts[k] + sizes[k]] = base + j * L + torch.arange(sizes[k])
        base += len(members) * L
    return SegmentPlan((B, T), tuple(groups), scatter)


def _banded_causal(L: int, window: int) -> torch.Tensor:
    """(L, L) bool: query i sees key j when 0 <= i - j < window (transformers' sliding window)."""
    d = torch.arange(L)[:, None] - torch.arange(L)[None]
    return (d >= 0) & (d < window)


def segments_attention_forward(module, query, key, value, attention_mask, dropout: float = 0.0,
                               scaling: float | None = None, sliding_window: int | None = None,
                               segments: SegmentPlan | None = None, **kwargs):
    """transformers attention function: (B, H, T, D) query, (B, Hkv, T, D) key and value ->
    ((B, T, H, D) output, None). With ``segments`` (a ``SegmentPlan``) each group of segments is
    one causal SDPA call; without, the call is ``"sdpa"``'s."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if segments is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, sliding_window=sliding_window, **kwargs)
    if getattr(module, "attn_logit_softcapping", None) is not None:
        raise ValueError("segment attention does not implement attention logit soft-capping")
    B, H, T, D = query.shape
    if key.shape[2] != T or segments.shape != (B, T):
        raise ValueError(f"segment plan for {segments.shape} but queries {(B, T)} and keys of length "
                         f"{key.shape[2]} (segments are for a forward without a cache)")
    Hkv, Dv = key.shape[1], value.shape[-1]
    q = query.transpose(1, 2).reshape(B * T, H, D)
    k = key.transpose(1, 2).reshape(B * T, Hkv, D)
    v = value.transpose(1, 2).reshape(B * T, Hkv, Dv)
    outs = []
    for L, idx in segments.groups:
        n = idx.numel() // L

        def take(x):
            return x.index_select(0, idx).view(n, L, x.shape[1], x.shape[2]).transpose(1, 2)

        mask = _banded_causal(L, sliding_window).to(query.device) if sliding_window and L > sliding_window else None
        o = F.scaled_dot_product_attention(take(q), take(k), take(v), attn_mask=mask, dropout_p=dropout,
                                           is_causal=mask is None, scale=scaling, enable_gqa=Hkv != H)
        outs.append(o.transpose(1, 2).reshape(n * L, H, Dv))
    outs.append(query.new_zeros(1, H, Dv))
    return torch.cat(outs).index_select(0, segments.scatter).view(B, T, H, Dv), None


def register() -> None:
    """Make ``"segments"`` a transformers attention implementation (idempotent): its attention
    function above, and ``"sdpa"``'s mask builder for the calls that pass no segments."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    AttentionInterface.register(NAME, segments_attention_forward)
    AttentionMaskInterface.register(NAME, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])


def no_masks(config) -> dict:
    """A prepared mask per layer type, all None: the model then builds no mask at all."""
    return {t: None for t in set(config.layer_types)}
