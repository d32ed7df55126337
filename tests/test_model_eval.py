"""`biotag eval-model --pred-dir`: predictions survive a kill, and a rerun continues where it stopped
with exactly the predictions an uninterrupted run gives."""
import json

import pytest

from biotag.runtime.decoding import ConstrainedDecoder
from biotag.runtime.document import Document, Entity
from biotag.runtime.model_eval import predict_resumable
from biotag.runtime.prompting import Task
from test_decoding import TABLE, HashBackend

TASK = Task("ncbi-disease", ("Disease",), "S")
TEXTS = ["The patient has fever and cough .", "BRCA1 mutations cause breast cancer .",
         "No disease here at all .", "Aspirin - induced asthma was seen .", "腹 痛 three days ."]
DOCS = [Document(f"d{i}", t, [Entity(0, 3, "Disease", t[:3])], "en") for i, t in enumerate(TEXTS)]
KEY = {"corpus": "ncbi-disease", "split": "dev", "model": "m1"}


class Killed(Exception):
    pass


class CountingBackend(HashBackend):
    """HashBackend that counts the documents it starts and can be 'killed' at the k-th one."""

    def __init__(self, kill_at=None):
        super().__init__(marker_rate=0.5)
        self.docs_started = 0
        self.kill_at = kill_at

    def reset(self):
        self.docs_started += 1
        if self.kill_at is not None and self.docs_started > self.kill_at:
            raise Killed()
        super().reset()


def decoder(backend):
    return ConstrainedDecoder(backend, TABLE, speculative=True)


def spans(docs):
    return [(d.id, [(e.start, e.end, e.type) for e in d.sorted_entities()]) for d in docs]


def test_resume_after_kill_gives_the_uninterrupted_predictions(tmp_path):
    full, _, resumed = predict_resumable(decoder(CountingBackend()), DOCS, TASK, tmp_path / "a.jsonl", KEY)
    assert resumed == 0
    assert any(d.entities for d in full)   # the toy backend does insert markers

    out = tmp_path / "b" / "ncbi-disease.dev.jsonl"
    with pytest.raises(Killed):
        predict_resumable(decoder(CountingBackend(kill_at=3)), DOCS, TASK, out, KEY)
    assert not out.exists()                # no final file until every document is done
    partial = out.with_name(out.name + ".partial")
    assert len(partial.read_text(encoding="utf-8").splitlines()) == 1 + 3
    # a kill while writing leaves a cut-off last line: it is dropped and that document redone
    with open(partial, "a", encoding="utf-8") as f:
        f.write('{"wall_s": 0.1, "doc": {"id": "d3", "te')

    again = CountingBackend()
    pred, wall, resumed = predict_resumable(decoder(again), DOCS, TASK, out, KEY)
    assert resumed == 3
    assert 0 < again.docs_started <= 2 * len(DOCS[3:])   # only d3 and d4 were decoded again
    assert spans(pred) == spans(full)
    assert wall >= 0
    assert not partial.exists()
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["id"] for x in lines] == [d.id for d in DOCS]
    assert spans([Document.from_json(json.loads(x)) for x in lines]) == spans(full)


def test_partial_file_of_another_run_is_not_reused(tmp_path, capsys):
    out = tmp_path / "ncbi-disease.dev.jsonl"
    with pytest.raises(Killed):
        predict_resumable(decoder(CountingBackend(kill_at=2)), DOCS, TASK, out, KEY)
    other = dict(KEY, model="m2")
    b = CountingBackend()
    pred, _, resumed = predict_resumable(decoder(b), DOCS, TASK, out, other)
    assert resumed == 0 and b.docs_started >= len(DOCS)
    assert "another run" in capsys.readouterr().err
    full, _, _ = predict_resumable(decoder(CountingBackend()), DOCS, TASK, tmp_path / "x.jsonl", other)
    assert spans(pred) == spans(full)


def test_evaluate_on_corpus_writes_resumable_predictions(tmp_path):
    import shutil
    from pathlib import Path

    from biotag.runtime.model_eval import evaluate_on_corpus

    data = tmp_path / "data"
    (data / "ncbi-disease").mkdir(parents=True)
    shutil.copy(Path(__file__).parent / "fixtures" / "corpora" / "iob.tsv", data / "ncbi-disease" / "dev.tsv")
    out = tmp_path / "pred" / "ncbi-disease.dev.jsonl"
    first = evaluate_on_corpus(decoder(CountingBackend()), "ncbi-disease", "dev", data, pred_out=out,
                               model_id="m1")
    assert first["run"]["resumed_documents"] == 0 and out.exists()
    again = evaluate_on_corpus(decoder(CountingBackend()), "ncbi-disease", "dev", data, pred_out=out,
                               model_id="m1")
    assert again["micro"] == first["micro"]   # the final file is not a partial one: all decoded anew
    with pytest.raises(Killed):
        evaluate_on_corpus(decoder(CountingBackend(kill_at=1)), "ncbi-disease", "dev", data, pred_out=out,
                           model_id="m1")
    resumed = evaluate_on_corpus(decoder(CountingBackend()), "ncbi-disease", "dev", data, pred_out=out,
                                 model_id="m1")
    assert resumed["run"]["resumed_documents"] == 1 and resumed["micro"] == first["micro"]


def test_bundle_identity_changes_with_the_thresholds_a_selector_filters_with():
    from types import SimpleNamespace

    from biotag.runtime.model_eval import bundle_identity

    manifest = {"llm": {"file": "m.gguf"}, "selector": {"file": "s.onnx"},
                "files": {"m.gguf": {"sha256": "aaa"}, "s.onnx": {"sha256": "bbb"}}}
    shipped = SimpleNamespace(selector=object(), thresholds={"Gene": 0.3, "*": 0.0}, fusion="geometric")
    keep_all = SimpleNamespace(selector=object(), thresholds={"*": 0.0}, fusion="geometric")
    other_fusion = SimpleNamespace(selector=object(), thresholds={"Gene": 0.3, "*": 0.0}, fusion="selector")
    no_selector = SimpleNamespace(selector=None, thresholds={"Gene": 0.3}, fusion="geometric")
    ids = [bundle_identity(manifest, p) for p in (shipped, keep_all, other_fusion, no_selector)]
    assert len(set(ids)) == 4 and all(i.startswith("aaa") for i in ids)
    assert "bbb" in ids[0] and "bbb" not in ids[3]
    # the same rule in another key order is the same run
    reordered = SimpleNamespace(selector=object(), thresholds={"*": 0.0, "Gene": 0.3}, fusion="geometric")
    assert bundle_identity(manifest, reordered) == ids[0]
    # one pass under the profile instructions is another run than the bundle's own instructions
    manifest["profiles"] = {"en": ["bc5cdr"]}
    own = SimpleNamespace(**vars(shipped), profiles={"en": ["bc5cdr"]})
    one_pass = SimpleNamespace(**vars(shipped), profiles={"en": ["profile-en"], "zh": ["profile-zh"]})
    assert bundle_identity(manifest, own) == ids[0]
    assert bundle_identity(manifest, one_pass) not in ids


def test_one_pass_needs_the_profile_measurement_of_a_bundle(tmp_path, capsys):
    from biotag.runtime.cli import main

    rc = main(["eval-model", "--gguf", str(tmp_path / "m.gguf"), "--corpus", "ncbi-disease", "--one-pass"])
    assert rc != 0 and "--one-pass" in capsys.readouterr().err
    rc = main(["eval-model", "--gguf", str(tmp_path / "m.gguf"), "--corpus", "ncbi-disease", "--draft-words", "0"])
    assert rc != 0 and "--draft-words" in capsys.readouterr().err
