"""Word segmentation and text segmentation keep exact offsets on any text."""
from hypothesis import given, settings, strategies as st

from biotag.runtime.segment import detect_lang, segment_text, windows
from biotag.runtime.words import char_span_to_words, segment_words


def texts(w):
    return [x.text for x in segment_words(w)]


def test_examples_from_the_spec():
    assert texts("BRCA1-associated") == ["BRCA1", "-", "associated"]
    assert texts("腹部疼痛") == list("腹部疼痛")
    assert texts("TCT检查, 2.5 mg") == ["TCT", "检", "查", ",", "2", ".", "5", "mg"]
    assert texts("a\u3000b") == ["a", "b"]          # ideographic space separates words
    assert texts("Crohn's 😀") == ["Crohn", "'", "s", "😀"]


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=120))
def test_words_have_exact_offsets_and_no_whitespace(t):
    ws = segment_words(t)
    for w in ws:
        assert t[w.start:w.end] == w.text and w.text and not any(c.isspace() for c in w.text)
        assert char_span_to_words(ws, w.start, w.end) is not None
    assert all(a.end <= b.start for a, b in zip(ws, ws[1:]))
    # everything that is not whitespace is covered by some word
    covered = sum(w.end - w.start for w in ws)
    assert covered == sum(1 for c in t if not c.isspace())


NOTE = ("HPI: 67 yo M with hx of CHF.\r\nMedications:\n- metoprolol 2.5 mg b.i.d.\n"
        "- Dr. Lee advised aspirin 81 mg daily, e.g. after meals.\n\n患者男，67岁。主诉：胸痛3天！")


def test_clinical_note_segments():
    segs = segment_text(NOTE)
    got = [NOTE[s.start:s.end] for s in segs]
    assert got == ["HPI: 67 yo M with hx of CHF.", "Medications:", "- metoprolol 2.5 mg b.i.d.",
                   "- Dr. Lee advised aspirin 81 mg daily, e.g. after meals.", "患者男，67岁。", "主诉：胸痛3天！"]
    assert [s.lang for s in segs] == ["en"] * 4 + ["zh"] * 2
    assert detect_lang("abc 腹痛腹痛腹痛") == "zh" and detect_lang("CT scan of the chest 示") == "en" and detect_lang("CT示") == "zh"


def test_abbreviations_do_not_end_sentences():
    # tokenized corpus text and genus abbreviations: a cut here would split the species name
    t = "Growth of C . albicans and E. coli K - 12 was inhibited . Smith et al . showed it ."
    assert [t[s.start:s.end] for s in segment_text(t)] == [
        "Growth of C . albicans and E. coli K - 12 was inhibited .", "Smith et al . showed it ."]
    t = "Streptococcus ursoris sp . nov . , isolated from bears . Cells were cocci ."
    assert [t[s.start:s.end] for s in segment_text(t)] == [
        "Streptococcus ursoris sp . nov . , isolated from bears .", "Cells were cocci ."]
    t = "Activation of PU . 1 was seen with 2 . 2 kb transcripts of C . fetus subsp . venerealis ."
    assert len(segment_text(t)) == 1
    # a real sentence end before a capital stays a cut
    t = "It was seen in vivo. Then it was gone."
    assert [t[s.start:s.end] for s in segment_text(t)] == ["It was seen in vivo.", "Then it was gone."]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_segments_are_exact_and_ordered(t):
    segs = segment_text(t)
    for s in segs:
        assert 0 <= s.start < s.end <= len(t)
        assert t[s.start:s.end].strip() == t[s.start:s.end]
    assert all(a.end <= b.start for a, b in zip(segs, segs[1:]))
    # no visible character is lost
    inside = {i for s in segs for i in range(s.start, s.end)}
    assert all(i in inside for i, c in enumerate(t) if not c.isspace())


@given(st.integers(1, 400), st.integers(10, 90))
def test_windows_own_every_word_once(n, max_words):
    words = segment_words(" ".join(f"w{i}" for i in range(n)))
    ws = windows(words, max_words=max_words, overlap=min(16, max_words // 2))
    owned = [w for win in ws for w in win.words[win.own_start:win.own_end]]
    assert owned == words
    assert all(len(win.words) <= max_words for win in ws)
