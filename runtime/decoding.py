"""Copy-constrained greedy decoding, token by token or copy-speculative, over any backend.

At every decision point the model may only continue the copy of the input (the next word's first
token) or insert a marker that is valid there, so the output is always the input plus markers and
always decodes to exact offsets. The backend only has to append tokens to its sequence and return
the scores of a few candidate token ids at chosen positions (llama.cpp in runtime/llm.py, PyTorch
in models/).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np

from .codec import FORMAT_S, MAX_DEPTH, Span
from .prompting import Task, TokenTable, max_adjacent_run


class Backend(Protocol):
    def reset(self) -> None:
        """Forget the sequence (a backend may keep a cached prefix and reuse it)."""

    def append(self, tokens: Sequence[int], queries: dict[int, Sequence[int]]) -> dict[int, np.ndarray]:
        """Append ``tokens``; for each ``k -> ids`` in ``queries`` return the logits of ``ids`` for the
        token following ``tokens[k]``."""

    def rollback(self, n: int) -> None:
        """Drop the last ``n`` appended tokens."""


@dataclass
class DecodeStats:
    calls: int = 0
    tokens_fed: int = 0
    markers: int = 0
    guard_blocks: int = 0   # decision points where the adjacency guard removed the open markers


def marker_choices(table: TokenTable, types: Sequence[str], fmt: str, at_end: bool, depth: int,
                   just_opened: bool, can_open: bool = True) -> list[tuple[int, str, str | None]]:
    """Markers allowed at a decision point: (token id, "open"/"close", type). A type the model
    has no opener marker for (``table.types``) is never offered."""
    out = []
    if depth and not just_opened:
        out.append((table.close_id, "close", None))
    if not at_end and depth < MAX_DEPTH and can_open:
        if fmt == FORMAT_S:
            out.extend((table.opener_id(t), "open", t) for t in types if table.has_type(t))
        else:
            out.append((table.opener_id(None), "open", None))
    return out


def _prob(scores: np.ndarray, k: int) -> float:
    z = np.asarray(scores, dtype=np.float64)
    z = np.exp(z - z.max())
    return float(z[k] / z.sum())


@dataclass
class _State:
    i: int = 0
    stack: list = field(default_factory=list)   # (type, start word, p(open))
    just_opened: bool = False
    spans: list = field(default_factory=list)
    top_end: int = -1   # word index where the last outermost span closed
    run: int = 0        # outermost spans in a row, each starting where the previous one ended
    stopped: bool = False   # the adjacency guard saw a loop: no new span opens in this pass


class ConstrainedDecoder:
    """Greedy copy-constrained decoding of one pass (one prompt) over ``words``."""

    def __init__(self, backend: Backend, table: TokenTable, speculative: bool = True,
                 one_token_per_call: bool = False, marker_bias: float = 0.0,
                 draft_words: int | None = None, adjacency_guard: bool = True,
                 task_bias: dict[str, float] | None = None):
        self.backend = backend
        # cap runs of adjacent outermost spans at what the training data has (see decode); off only
        # to measure what the guard changes
        self.adjacency_guard = adjacency_guard
        # added to every marker's logit before the greedy choice (a log-odds shift toward tagging,
        # tuned on dev sets; confidences are still computed from the unshifted logits)
        self.marker_bias = float(marker_bias)
        # instruction name -> its own marker bias (a bundle's llm.task_bias, tuned on that
        # instruction's dev set); instructions not named use marker_bias
        self.task_bias = {str(k): float(v) for k, v in (task_bias or {}).items()}
        self._bias = self.marker_bias   # the bias of the decode in progress
        self.table = table
        self.speculative = speculative
        self.one_token_per_call = one_token_per_call
        # longest speculative draft in words (None: the rest of the input); a draft cut at a marker
        # wastes its tail, a short draft costs more calls
        self.draft_words = draft_words
        self.stats = DecodeStats()
        self.scores: dict[Span, float] = {}   # confidence of each span of the last decode
        self.max_adjacent: int | None = None  # of the current decode (see decode)
        self._blocked_at: set[int] = set()

    def bias_for(self, instruction: str | None) -> float:
        """The marker bias of one instruction (task_bias, else marker_bias)."""
        return self.task_bias.get(instruction, self.marker_bias) if instruction else self.marker_bias

    def _choose(self, scores) -> int:
        if self._bias and len(scores) > 1:
            scores = np.asarray(scores, dtype=np.float64).copy()
            scores[1:] += self._bias
        return int(np.argmax(scores))

    def _cands(self, st: _State, words, types, fmt):
        if (self.max_adjacent is not None and not st.stack and st.top_end == st.i
                and st.run >= self.max_adjacent and st.i < len(words)):
            st.stopped = True   # one more adjacent span than any training sentence has: a loop
        can_open = not (st.stopped and not st.stack)
        if not can_open and st.i < len(words):
            self._blocked_at.add(st.i)
        marks = marker_choices(self.table, types, fmt, st.i >= len(words), len(st.stack), st.just_opened,
                               can_open)
        first = self.table.word_ids(words[st.i])[0] if st.i < len(words) else None
        return first, marks

    @staticmethod
    def _ids(first, marks):
        return ([first] if first is not None else []) + [m[0] for m in marks]

    def _feed(self, tokens, queries):
        self.stats.calls += 1 if not self.one_token_per_call else len(tokens)
        self.stats.tokens_fed += len(tokens)
        if self.one_token_per_call and len(tokens) > 1:
            out = {}
            for k, t in enumerate(tokens):
                q = {0: queries[k]} if k in queries else {}
                r = self.backend.append([t], q)
                if k in queries:
                    out[k] = r[0]
            return out
        return self.backend.append(tokens, queries)

    def decode(self, prompt_ids: Sequence[int], words: Sequence[str], types: Sequence[str],
               fmt: str = FORMAT_S, pass_type: str | None = None, max_adjacent: int | None = None,
               marker_bias: float | None = None) -> list[Span]:
        """``max_adjacent``: at most this many outermost spans in a row with no untagged word between
        them. A greedy decoder can fall into a loop that tags every following word; the training data
        bounds how many such spans a sentence really has (prompting.MAX_ADJACENT). Once a run of that
        many has closed, no new span opens for the rest of this pass (spans already open still close;
        a version that only refused the one extra span let the loop resume after one untagged word).
        This also drops a later entity after a legitimate run of ``max_adjacent`` (``guard_would_stop``
        says exactly when); stopping only when the model wants one more is the unmeasured refinement.
        ``marker_bias``: this decode's bias (None: the decoder's marker_bias)."""
        self._bias = self.marker_bias if marker_bias is None else float(marker_bias)
        st = _State()
        n = len(words)
        self.scores = {}
        self.max_adjacent = max_adjacent if self.adjacency_guard else None
        self._blocked_at: set[int] = set()
        self.backend.reset()
        if n == 0:
            return []
        first, marks = self._cands(st, words, types, fmt)
        scores = self._feed(list(prompt_ids), {len(prompt_ids) - 1: self._ids(first, marks)})[len(prompt_ids) - 1]
        while st.i < n:
            first, marks = self._cands(st, words, types, fmt)
            choice = self._choose(scores)  # ties prefer the copy (index 0)
            lead: list[int] = []
            if choice > 0:
                tok, kind, t = marks[choice - 1]
                self.stats.markers += 1
                p = _prob(scores, choice)
                if kind == "close":
                    t0, start, p0 = st.stack.pop()
                    sp = Span(start, st.i, t0 if fmt == FORMAT_S else pass_type)
                    st.spans.append(sp)
                    self.scores[sp] = max(self.scores.get(sp, 0.0), p0 * p)
                    st.just_opened = False
                    if not st.stack:   # an outermost span closed
                        st.run = st.run + 1 if st.top_end == start else 1
                        st.top_end = st.i
                else:
                    st.stack.append((t, st.i, p))
                    st.just_opened = True
                f2, m2 = self._cands(st, words, types, fmt)
                if not self.speculative:
                    scores = self._feed([tok], {0: self._ids(f2, m2)})[0]
                    continue
                lead = [tok]
            elif not self.speculative:
                toks = list(self.table.word_ids(words[st.i]))
                st.i += 1
                st.just_opened = False
                if st.i >= n:
                    break
                f2, m2 = self._cands(st, words, types, fmt)
                scores = self._feed(toks, {len(toks) - 1: self._ids(f2, m2)})[len(toks) - 1]
                continue
            # copy-speculative: the marker just chosen (if any), then the rest of the copy, in one
            # call; accept up to the first decision point where the model prefers a marker
            draft: list[int] = list(lead)
            queries: dict[int, list[int]] = {0: self._ids(f2, m2)} if lead else {}
            ends: list[tuple[int, int]] = []   # (word index j, draft position of its last token)
            probe = _State(st.i, st.stack, False, top_end=st.top_end, run=st.run, stopped=st.stopped)
            last = n if self.draft_words is None else min(n, st.i + self.draft_words)
            for j in range(st.i, last):
                draft.extend(self.table.word_ids(words[j]))
                if j + 1 < n:
                    probe.i = j + 1
                    f3, m3 = self._cands(probe, words, types, fmt)
                    queries[len(draft) - 1] = self._ids(f3, m3)
                    ends.append((j, len(draft) - 1))
            res = self._feed(draft, queries)
            if lead and self._choose(res[0]) > 0:   # another marker right after this one
                self.backend.rollback(len(draft) - 1)
                scores = res[0]
                continue
            accepted_to = last - 1
            for j, pos in ends:
                if self._choose(res[pos]) > 0:
                    accepted_to = j
                    scores = res[pos]
                    self.backend.rollback(len(draft) - 1 - pos)
                    break
            else:
                if last < n:   # the draft ended before the input: decide at its last word's end
                    scores = res[ends[-1][1]]
            st.i = accepted_to + 1
            st.just_opened = False
        self.stats.guard_blocks += len(self._blocked_at)
        while st.stack:  # the end of the input closes everything still open (forced)
            t0, start, p0 = st.stack.pop()
            sp = Span(start, n, t0 if fmt == FORMAT_S else pass_type)
            st.spans.append(sp)
            self.scores[sp] = max(self.scores.get(sp, 0.0), p0)
        return sorted(set(st.spans), key=lambda s: (s.start, -s.end, s.type))


# what the adjacency guard does (part of eval-model's resume key: predictions of another guard are
# not resumed)
GUARD = "adjacent-run cap from the training data; reaching it stops the pass"


def _adjacent_runs(spans: Sequence[Span]) -> list[int]:
    """For each outermost span (inside no other span), in order: how many outermost spans in a row
    end with it, each starting at the word where the previous one ends."""
    bounds = sorted({(s.start, s.end) for s in spans})
    outer = [(a, b) for a, b in bounds if not any(c <= a and b <= d and (c, d) != (a, b) for c, d in bounds)]
    runs, prev_end = [], None
    for a, b in outer:
        runs.append(runs[-1] + 1 if runs and a == prev_end else 1)
        prev_end = b
    return runs


def longest_adjacent_run(spans: Sequence[Span]) -> int:
    """The longest run of adjacent outermost spans: what ``max_adjacent`` bounds."""
    return max(_adjacent_runs(spans), default=0)


def guard_would_stop(spans: Sequence[Span], cap: int) -> bool:
    """Whether the adjacency guard (cap ``cap``) changes a pass whose unguarded output is ``spans``:
    the guard stops the pass as soon as ``cap`` adjacent outermost spans have closed, so the output
    changes exactly when some outermost span starts at or after the end of such a run."""
    return any(r >= cap for r in _adjacent_runs(spans)[:-1])


def tag_words_scored(decoder: ConstrainedDecoder, task: Task, words: Sequence[str]) -> dict[Span, float]:
    """All passes of a task over one word sequence: span -> confidence (p(open) * p(close))."""
    out: dict[Span, float] = {}
    for types, prefix in task.passes():
        prompt = decoder.table.prompt_ids(task, words, types, prefix)
        decoder.decode(prompt, words, list(types), task.fmt,
                       pass_type=types[0] if task.fmt != FORMAT_S else None,
                       max_adjacent=max_adjacent_run(task.dataset), marker_bias=decoder.bias_for(task.dataset))
        for sp, p in decoder.scores.items():
            out[sp] = max(out.get(sp, 0.0), p)
    return out


def tag_words(decoder: ConstrainedDecoder, task: Task, words: Sequence[str]) -> list[Span]:
    """All passes of a task over one word sequence."""
    return sorted(tag_words_scored(decoder, task, words), key=lambda s: (s.start, -s.end, s.type))
