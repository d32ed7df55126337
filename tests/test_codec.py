"""Symbolic tag codec: exact round trips, and a decoder that never raises."""
from hypothesis import given, settings, strategies as st

from biotag.runtime.codec import (CLOSE, FORMAT_P, FORMAT_S, MARKER_TOKENS, OPEN, Span, decode,
                                  encodable, encode)
from biotag.runtime.labels import TYPE_ORDER

TYPES = ["Disease", "Chemical", "Anatomy", "Symptom"]
word_st = st.one_of(
    st.text(st.characters(blacklist_categories=("Zs", "Zl", "Zp", "Cc", "Cs")), min_size=1, max_size=6),
    st.sampled_from([OPEN, CLOSE, "\\", OPEN + "Disease", "[", "]", "Type:", "腹", "😀", "\\" + OPEN]),
).filter(lambda w: w.strip() == w and not any(c.isspace() for c in w))


@st.composite
def nested_example(draw):
    words = draw(st.lists(word_st, min_size=1, max_size=12))
    n = len(words)
    spans = set()
    for _ in range(draw(st.integers(0, 8))):
        a = draw(st.integers(0, n - 1))
        b = draw(st.integers(a + 1, n))
        spans.add(Span(a, b, draw(st.sampled_from(TYPES))))
    return words, spans


def test_paper_example_format_p():
    words = "Activation of the CD28 surface receptor provides".split()
    spans = {Span(3, 4, "Protein"), Span(3, 6, "Protein")}
    out = encode(words, spans, FORMAT_P)
    assert out == f"Protein:  Activation of the {OPEN} {OPEN} CD28 {CLOSE} surface receptor {CLOSE} provides"
    assert set(decode(words, out, FORMAT_P)[0]) == spans


def test_format_s_cross_type_nesting():
    words = list("右下腹疼痛")
    spans = {Span(0, 5, "Symptom"), Span(0, 3, "Anatomy")}
    out = encode(words, spans, FORMAT_S)
    assert out == f"{OPEN}Symptom {OPEN}Anatomy 右 下 腹 {CLOSE} 疼 痛 {CLOSE}"
    got, diag = decode(words, out, FORMAT_S)
    assert set(got) == spans and diag.ok


def test_words_that_look_like_markers_are_escaped():
    words = ["[", OPEN, "x", CLOSE, "\\"]
    spans = {Span(1, 4, "Disease")}
    for fmt in (FORMAT_P, FORMAT_S):
        got, diag = decode(words, encode(words, spans, fmt), fmt)
        assert set(got) == spans and diag.ok


@settings(max_examples=300, deadline=None)
@given(nested_example())
def test_round_trip_both_formats(ex):
    words, spans = ex
    for fmt in (FORMAT_P, FORMAT_S):
        kept, dropped = encodable(spans, fmt)
        assert set(kept) | set(dropped) == spans
        got, diag = decode(words, encode(words, spans, fmt), fmt)
        assert set(got) == set(kept), fmt
        assert diag.ok


@settings(max_examples=300, deadline=None)
@given(nested_example())
def test_non_crossing_sets_round_trip_completely(ex):
    words, spans = ex
    # remove every crossing span: the rest is a nested set that both formats must carry whole
    flat = []
    for s in sorted(spans, key=lambda s: (s.start, -s.end)):
        if not any(k.start < s.start < k.end < s.end or s.start < k.start < s.end < k.end for k in flat):
            flat.append(s)
    for fmt in (FORMAT_P, FORMAT_S):
        assert set(decode(words, encode(words, flat, fmt), fmt)[0]) == set(flat)


@settings(max_examples=500, deadline=None)
@given(st.lists(word_st, max_size=10), st.text(max_size=80),
       st.sampled_from([FORMAT_P, FORMAT_S, "X"]))
def test_decode_is_total(words, garbage, fmt):
    spans, diag = decode(words, garbage, fmt)
    for s in spans:
        assert 0 <= s.start < s.end <= len(words)


@settings(max_examples=300, deadline=None)
@given(nested_example(), st.data())
def test_decode_survives_corrupted_output(ex, data):
    words, spans = ex
    units = encode(words, spans, FORMAT_S).split(" ")
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["drop", "dup", "insert"]))
        k = data.draw(st.integers(0, len(units) - 1))
        if op == "drop" and len(units) > 1:
            units.pop(k)
        elif op == "dup":
            units.insert(k, units[k])
        else:
            units.insert(k, data.draw(st.sampled_from([OPEN + "Nope", CLOSE, OPEN + "Disease", "zzz"])))
    got, diag = decode(words, " ".join(units), FORMAT_S, types=TYPES)
    assert all(0 <= s.start < s.end <= len(words) and s.type in TYPES for s in got)


def test_unknown_type_and_bad_line_are_reported():
    words = ["a", "b"]
    got, diag = decode(words, f"Nope:  {OPEN} a {CLOSE} b\nno prefix here", FORMAT_P, types=["Disease"])
    assert got == [] and diag.unknown_types == 1 and diag.bad_lines == 1 and not diag.ok


def test_marker_tokens_are_distinct_special_tokens():
    assert len(set(MARKER_TOKENS.values())) == len(MARKER_TOKENS) == len(TYPE_ORDER) + 2
    assert all(v.startswith("<unused") for v in MARKER_TOKENS.values())
