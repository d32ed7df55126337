"""Property-based fuzz of the whole tagging pipeline on the tiny test bundle: bytes -> decode (with
``--errors replace``) -> Tagger -> canonical JSONL -> read back. Random Unicode text with zero-width
and bidi characters, emoji sequences, CRLF and lone CR, invalid UTF-8 and encoded lone surrogates,
very long words and lines, mixed scripts. Properties: no exception, every entity's text is
``doc.text[start:end]``, the output text equals the decoded input, the JSONL reads back the same.

A few hundred cases run with the tests; ``BIOTAG_SLOW=1`` runs the 10,000-case variant (about as
long as 10,000 short documents take to tag with the tiny model).
"""
import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from biotag.runtime.document import Document
from biotag.runtime.formats import jsonl
from biotag.runtime.tagger import TagOptions, Tagger
from biotag.runtime.textio import decode_text

SPECIALS = ["\u200b", "\u200c", "\u200d", "\ufeff", "\u202e", "\u202c", "\u2066", "\u2069", "\u200f",
            "😀", "👩\u200d⚕️", "🇨🇳", "e\u0301", "\r\n", "\r", "\n", "\t", "\u2028", "\x0b", "\x0c",
            "患者发热三天。", "fever", "BRCA1", "IL-2", "aspirin.", " ", "  ", "。", "（", "）",
            "ﬁ", "İ", "ß", "Ω", "\U00020000", "\ue000"]
# bytes that are not valid UTF-8: a lone continuation byte, a cut-off sequence, an encoded surrogate
BAD_BYTES = [b"\x80", b"\xc3", b"\xe6\x82", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf0\x9f", b"\xff", b"\xfe"]

piece = st.one_of(
    st.sampled_from(SPECIALS).map(str.encode),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
    .map(str.encode),
    st.sampled_from(BAD_BYTES),
    st.integers(1, 400).map(lambda n: ("x" * n).encode()),                  # very long words
    st.integers(1, 60).map(lambda n: " ".join(["word"] * n).encode()),        # long lines
)
documents = st.lists(piece, max_size=25).map(b"".join)


@pytest.fixture(scope="module")
def tagger(tiny_bundle):
    return Tagger.load(tiny_bundle, device="cpu", threads=1)


def check(tagger, data: bytes) -> None:
    text = decode_text(data, "<fuzz>", "utf-8", "replace", allow_empty=True)
    doc = tagger.tag_document(Document("fuzz", text, []), TagOptions(use_selector=False))
    assert doc.text == text
    for e in doc.entities:
        assert 0 <= e.start < e.end <= len(text) and e.text == text[e.start:e.end], e
    back, = jsonl.loads(jsonl.dumps([doc]))
    assert back.text == text
    assert sorted((e.start, e.end, e.type, e.text) for e in back.entities) == \
           sorted((e.start, e.end, e.type, e.text) for e in doc.entities)


@settings(max_examples=int(os.environ.get("BIOTAG_FUZZ_EXAMPLES", "300")), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(documents)
def test_fuzz_pipeline(tagger, data):
    check(tagger, data)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("BIOTAG_SLOW"), reason="10,000 cases: set BIOTAG_SLOW=1")
@settings(max_examples=10_000, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(documents)
def test_fuzz_pipeline_10000(tagger, data):
    check(tagger, data)


@pytest.mark.parametrize("data", [
    "\u200b" * 5 + "000:0:{0˂\U00020402" + "x" * 920,                  # found by this fuzz: the context overflowed
    "𠀀" * 3000, "x" * 5000, " ".join(["a" * 150] * 40), "患" * 4000])
def test_long_words_never_overflow_the_context(tagger, data):
    check(tagger, data.encode())


def test_fuzz_inputs_reach_the_hard_cases():
    """The generator does produce what the fuzz is for (so a change to it cannot hollow it out)."""
    text = decode_text(b"a\xed\xa0\x80b\r\n\xe2\x80\x8b" + "😀患".encode(), "<x>", "utf-8", "replace")
    assert text == "a\ufffd\ufffd\ufffdb\r\n\u200b😀患"
    seen = set()

    @settings(max_examples=2000, derandomize=True, database=None, suppress_health_check=[HealthCheck.data_too_large])
    @given(documents)
    def probe(data):
        t = decode_text(data, "<x>", "utf-8", "replace", allow_empty=True)
        cjk = any("\u4e00" <= c <= "\u9fff" for c in t)
        seen.update(k for k, hit in (("replacement", "\ufffd" in t), ("crlf", "\r\n" in t),
                                     ("zero-width", "\u200b" in t or "\u200d" in t), ("cjk", cjk),
                                     ("bidi", "\u202e" in t), ("long-word", "x" * 100 in t),
                                     ("astral", any(ord(c) > 0xFFFF for c in t))) if hit)

    probe()
    assert seen == {"replacement", "crlf", "zero-width", "cjk", "bidi", "long-word", "astral"}
