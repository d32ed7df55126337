"""Copy-constrained decoding: output is always the input plus markers; copy-speculative decoding
gives exactly the same spans as token-by-token decoding, with fewer backend calls."""
import hashlib
import re

import numpy as np
from hypothesis import given, settings, strategies as st

from biotag.runtime.codec import FORMAT_P, FORMAT_S, decode, encode
from biotag.runtime.decoding import ConstrainedDecoder, tag_words
from biotag.runtime.prompting import Task, TokenTable


def fake_tokenize(text, special):
    """Deterministic toy tokenizer: <unusedN> -> N + 6 when special; else 1 token per 2 chars."""
    if special:
        m = re.fullmatch(r"<unused(\d+)>", text)
        if m:
            return [int(m.group(1)) + 6]
    return [1000 + (sum(map(ord, text[k:k + 2])) % 50000) for k in range(0, len(text), 2)]


class HashBackend:
    """Scores are a pure function of (sequence so far, candidate id): batch == one by one."""

    def __init__(self, marker_rate=0.25):
        self.seq = []
        self.rate = marker_rate
        self.calls = 0

    def reset(self):
        self.seq = []

    def _score(self, prefix, tok):
        h = hashlib.blake2b(repr((prefix[-6:], tok)).encode(), digest_size=4).digest()
        x = int.from_bytes(h, "little") / 2**32
        return x if tok >= 1000 else x * (self.rate * 4)   # markers win less often

    def append(self, tokens, queries):
        self.calls += 1
        start = len(self.seq)
        self.seq.extend(tokens)
        return {k: np.array([self._score(tuple(self.seq[: start + k + 1]), c) for c in ids])
                for k, ids in queries.items()}

    def rollback(self, n):
        if n:
            del self.seq[-n:]


TABLE = TokenTable(fake_tokenize, bos_id=2)
words_st = st.lists(st.sampled_from(["the", "patient", "has", "fever", "腹", "痛", "[", "]", "CD28",
                                     "-", "⟦", "\\"]), min_size=1, max_size=14)


@settings(max_examples=150, deadline=None)
@given(words_st, st.sampled_from([FORMAT_S, FORMAT_P]), st.floats(0.05, 0.6), st.sampled_from([1, 2, 3, 5]))
def test_speculative_equals_token_by_token(words, fmt, rate, draft_words):
    task = Task("bc5cdr", ("Chemical", "Disease"), fmt)
    results, calls = [], []
    for spec, one, cap in ((False, True, None), (False, False, None), (True, False, None), (True, False, draft_words)):
        be = HashBackend(rate)
        dec = ConstrainedDecoder(be, TABLE, speculative=spec, one_token_per_call=one, draft_words=cap)
        results.append(tag_words(dec, task, words))
        calls.append(be.calls)
    assert results[0] == results[1] == results[2] == results[3]
    assert calls[1] <= calls[0]
    # the spans are valid and the output string decodes back to them
    spans = results[0]
    assert all(0 <= s.start < s.end <= len(words) and s.type in task.types for s in spans)
    # decoded spans are well nested: the codec carries them exactly
    got, diag = decode(words, encode(words, spans, fmt), fmt)
    assert set(got) == set(spans) and diag.ok


def test_speculative_uses_few_calls_on_a_long_copy():
    words = ["word%d" % i for i in range(60)]
    task = Task("ncbi-disease", ("Disease",), FORMAT_S)
    be1, be2 = HashBackend(0.0), HashBackend(0.0)   # markers never win: pure copy
    s1 = tag_words(ConstrainedDecoder(be1, TABLE, speculative=False, one_token_per_call=True), task, words)
    s2 = tag_words(ConstrainedDecoder(be2, TABLE, speculative=True), task, words)
    assert s1 == s2 == []
    assert be2.calls == 2 and be1.calls > 60
    be3 = HashBackend(0.0)   # drafts of at most 16 words: 60 words in 4 drafts + the prompt
    assert tag_words(ConstrainedDecoder(be3, TABLE, speculative=True, draft_words=16), task, words) == []
    assert be3.calls == 5


def test_markers_are_single_special_tokens_never_produced_by_text():
    ids = set(TABLE.marker_ids.values())
    for w in ["⟦", "⟧", "<unused0>", "[", "]"]:
        assert not ids & set(TABLE.word_ids(w))


def test_an_instructions_own_marker_bias_applies_only_under_it():
    words = ["word%d" % i for i in range(20)]
    ncbi = Task("ncbi-disease", ("Disease",), FORMAT_S)
    bc2gm = Task("bc2gm", ("Gene",), FORMAT_S)
    # markers never beat the copy unbiased (rate 0); a bias of 5 log-odds makes them win
    dec = ConstrainedDecoder(HashBackend(0.0), TABLE, task_bias={"bc2gm": 5.0})
    assert dec.bias_for("bc2gm") == 5.0 and dec.bias_for("ncbi-disease") == 0.0
    assert tag_words(dec, ncbi, words) == []
    assert tag_words(dec, bc2gm, words) != []
    # the decoder-wide bias is what the others get, and an explicit bias of 0 overrides it
    dec = ConstrainedDecoder(HashBackend(0.0), TABLE, marker_bias=5.0, task_bias={"bc2gm": 0.0})
    assert tag_words(dec, bc2gm, words) == [] and tag_words(dec, ncbi, words) != []
