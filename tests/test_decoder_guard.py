"""The decoder's adjacency guard: no run of adjacent outermost entities longer than the training data
has (a greedy loop that tags every following word is cut), the guard changes nothing on a decode that
never reached its cap, and `eval-model --reuse` copies exactly the documents it cannot change."""
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from biotag.runtime.codec import FORMAT_P, FORMAT_S, Span
from biotag.runtime.decoding import ConstrainedDecoder, guard_would_stop, longest_adjacent_run, tag_words
from biotag.runtime.document import Document, Entity
from biotag.runtime.model_eval import evaluate_on_corpus, guard_cannot_change
from biotag.runtime.prompting import MAX_ADJACENT, Task, max_adjacent_run
from test_decoding import TABLE, HashBackend

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


class LoopBackend(HashBackend):
    """A greedy loop: close right after a word, open after anything but an open; every word becomes
    its own entity."""

    def _score(self, prefix, tok):
        if tok >= 1000:          # a copy token
            return 1.0
        if tok == TABLE.close_id:
            return 4.0
        after_open = prefix[-1] in TABLE.unit_of_id and prefix[-1] != TABLE.close_id
        return 0.0 if after_open else 3.0


def _decode(words, guard, backend=None, task=Task("ncbi-disease", ("Disease",), FORMAT_S), **kw):
    dec = ConstrainedDecoder(backend or LoopBackend(), TABLE, adjacency_guard=guard, **kw)
    return tag_words(dec, task, words), dec


def test_longest_adjacent_run_counts_outermost_spans_in_a_row():
    assert longest_adjacent_run([]) == 0
    assert longest_adjacent_run([Span(0, 1, "A"), Span(1, 2, "A"), Span(3, 4, "A")]) == 2
    # nested spans do not count; a gap of one word breaks the run
    assert longest_adjacent_run([Span(0, 3, "A"), Span(0, 1, "B"), Span(1, 2, "B"), Span(3, 5, "A")]) == 2
    assert longest_adjacent_run([Span(0, 2, "A"), Span(2, 3, "A"), Span(3, 4, "B"), Span(5, 6, "A")]) == 3


def test_a_loop_is_cut_at_the_training_data_cap():
    words = [f"w{i}" for i in range(20)]
    loose, d0 = _decode(words, guard=False)
    assert longest_adjacent_run(loose) == 20 and d0.stats.guard_blocks == 0   # the loop, unguarded
    spans, d1 = _decode(words, guard=True)
    cap = max_adjacent_run("ncbi-disease")
    assert longest_adjacent_run(spans) == cap and d1.stats.guard_blocks > 0
    # wanting one more is a loop: nothing more opens in this pass
    assert len(spans) == cap and spans == loose[:cap]


@settings(max_examples=120, deadline=None)
@given(st.lists(st.sampled_from(["the", "patient", "fever", "CD28", "-", "腹", "痛", ","]), min_size=1, max_size=16),
       st.sampled_from([FORMAT_S, FORMAT_P]), st.floats(0.2, 0.9),
       st.sampled_from(["ncbi-disease", "jnlpba", "cmeee"]))
def test_guard_changes_only_decodes_that_reach_the_cap(words, fmt, rate, dataset):
    task = Task(dataset, ("Disease", "Chemical"), fmt)
    loose, _ = _decode(words, False, HashBackend(rate), task)
    spans, dec = _decode(words, True, HashBackend(rate), task)
    cap = max_adjacent_run(dataset)
    if fmt == FORMAT_S:
        assert longest_adjacent_run(spans) <= cap
    else:   # one pass per type: the cap holds within each pass
        assert all(longest_adjacent_run([s for s in spans if s.type == t]) <= cap for t in task.types)
    if fmt == FORMAT_S and not guard_would_stop(loose, cap):
        assert spans == loose and dec.stats.guard_blocks == 0
    # speculative decoding still equals token-by-token decoding with the guard on
    slow, _ = _decode(words, True, HashBackend(rate), task, speculative=False, one_token_per_call=True)
    assert slow == spans


def test_guard_cannot_change_reads_runs_and_windows():
    text = "a b c d e f ."
    task = Task("ncbi-disease", ("Disease",))
    ents = [Entity(k, k + 1, "Disease", text[k]) for k in (0, 2, 4)]       # three adjacent words
    assert not guard_cannot_change(Document("x", text, ents, "en"), task)      # cap 2 < 3
    assert guard_cannot_change(Document("x", text, ents[:2], "en"), task)
    later = ents[:2] + [Entity(8, 9, "Disease", "e")]                          # a run of 2, a gap, one more
    assert not guard_cannot_change(Document("x", text, later, "en"), task)     # the guard drops "e"
    assert guard_cannot_change(Document("x", text, ents, "en"), Task("jnlpba", ("Protein",)))   # cap 3
    long = " ".join(["w"] * 90) + " ."
    assert not guard_cannot_change(Document("y", long, [], "en"), task)        # cut into windows


def test_eval_model_reuse_equals_a_full_guarded_decode(tmp_path):
    data = tmp_path / "data"
    (data / "ncbi-disease").mkdir(parents=True)
    shutil.copy(Path(__file__).parent / "fixtures" / "corpora" / "iob.tsv", data / "ncbi-disease" / "dev.tsv")

    def run(name, backend, guard=True, reuse=None):
        dec = ConstrainedDecoder(backend, TABLE, adjacency_guard=guard)
        out = tmp_path / name / "ncbi-disease.dev.jsonl"
        return evaluate_on_corpus(dec, "ncbi-disease", "dev", data, pred_out=out, model_id="m", reuse=reuse), out

    for kind, make in (("hash", lambda: HashBackend(0.7)), ("loop", LoopBackend)):
        loose, loose_out = run(f"{kind}-loose", make(), guard=False)
        full, full_out = run(f"{kind}-full", make())
        reused, reused_out = run(f"{kind}-reused", make(), reuse=loose_out)
        assert reused_out.read_text(encoding="utf-8") == full_out.read_text(encoding="utf-8")
        assert reused["micro"] == full["micro"] and reused["run"]["resumed_documents"] == 0
    assert reused["run"]["reused_documents"] == 0 and loose["micro"] != full["micro"]   # the loop: all redone


@pytest.mark.skipif(not (DATA / "ncbi-disease").is_dir() or os.environ.get("BIOTAG_SKIP_DATA"),
                    reason="needs ../shared/data")
def test_caps_are_the_training_data_maxima():
    from biotag.models.llm_data import adjacency_table

    for name, cap in adjacency_table(["ncbi-disease", "cmedqaner", "s800", "maccrobat2020", "chia"],
                                     DATA).items():
        assert MAX_ADJACENT[name] == cap, name

