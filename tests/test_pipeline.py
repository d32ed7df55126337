"""One path from text to Document (runtime.pipeline): `biotag tag`, the desktop worker and
`biotag eval-model --profile` give the same Document for the same text (tiny bundle), and no module
but the pipeline calls the segmenter or maps model windows to entities."""
import ast
import json
from pathlib import Path

import pytest

from biotag.runtime.cli import main
from biotag.runtime.document import Document
from conftest import QT_GUI_ERROR

ROOT = Path(__file__).resolve().parents[1]
TITLE = "Lithium toxicity in a newborn with chronic kidney disease."
ABSTRACT = ("Ocular and auditory toxicity followed lithium. The patient had fever, cough and headache "
            "after aspirin. Mice were given cisplatin and developed nephrotoxicity.\n"
            "患者腹痛三天，伴发热。 No rash was seen.")
TEXT = f"{TITLE}\n{ABSTRACT}"


def _key(doc: Document):
    return (doc.text, doc.lang,
            sorted((e.start, e.end, e.type, e.score, e.source, e.assertion, e.meta.get("task"))
                   for e in doc.entities))


@pytest.fixture(scope="module")
def cli_doc(tiny_bundle, tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    (d / "note.txt").write_text(TEXT, encoding="utf-8")
    out = d / "out"
    assert main(["tag", str(d / "note.txt"), "--bundle", str(tiny_bundle), "--out", str(out),
                 "--assertion", "off", "--quiet"]) == 0
    (line,) = (out / "note.jsonl").read_text(encoding="utf-8").splitlines()
    return Document.from_json(json.loads(line))


def test_the_tiny_model_finds_something(cli_doc):
    # otherwise the comparisons below compare empty lists
    assert len(cli_doc.entities) > 3 and cli_doc.meta["bundle"] == "tiny-test 0"


def test_eval_model_profile_runs_what_biotag_tag_runs(cli_doc, tiny_bundle, tmp_path):
    # a PubTator document (title + " " + abstract) and the same text through biotag tag
    data = tmp_path / "data" / "bc5cdr" / "pubtator"
    data.mkdir(parents=True)
    (data / "dev.PubTator.txt").write_text(f"7|t|{TITLE}\n7|a|{ABSTRACT.replace(chr(10), ' ')}\n\n",
                                           encoding="utf-8")
    from biotag.runtime import corpora

    (gold,) = corpora.load("bc5cdr-pubtator", "dev", tmp_path / "data")
    text = gold.text
    note = tmp_path / "note.txt"
    note.write_text(text, encoding="utf-8")
    assert main(["tag", str(note), "--bundle", str(tiny_bundle), "--out", str(tmp_path / "out"),
                 "--assertion", "off", "--quiet", "--lang", gold.lang]) == 0
    cli = Document.from_json(json.loads((tmp_path / "out" / "note.jsonl").read_text(encoding="utf-8")))
    assert main(["eval-model", "--bundle", str(tiny_bundle), "--corpus", "bc5cdr-pubtator", "--split", "dev",
                 "--data-dir", str(tmp_path / "data"), "--pred-dir", str(tmp_path / "pred"), "--profile",
                 "--json"]) == 0
    (pred,) = [Document.from_json(json.loads(x)) for x in
               (tmp_path / "pred" / "bc5cdr-pubtator.dev.jsonl").read_text(encoding="utf-8").splitlines()]
    assert cli.entities and _key(pred) == _key(cli)

    # the default mode asks with the corpus's own instruction, on the same segments
    from biotag.runtime.model_eval import predict_documents
    from biotag.runtime.prompting import Task
    from biotag.runtime.tagger import Tagger

    t = Tagger.load(tiny_bundle, device="cpu")
    (own,) = predict_documents(t.pipeline, [gold], Task.for_corpus("bc5cdr"))
    assert len(own.segments) >= 4 and own.segments == t.pipeline.tag(text, gold.lang).segments
    assert {e.meta["task"] for e in own.entities} <= {"bc5cdr"}
    (sent,) = predict_documents(t.pipeline, [gold], Task.for_corpus("bc5cdr"), mode="gold-sentences")
    assert sent.segments != own.segments or sent.entities == own.entities


@pytest.mark.skipif(QT_GUI_ERROR is not None, reason=QT_GUI_ERROR or "")
def test_desktop_worker_gives_the_cli_document(cli_doc, tiny_bundle, qtbot):
    from PySide6.QtWidgets import QWidget

    from biotag.desktop.worker import TaggerService
    from biotag.runtime.pipeline import TagOptions

    holder = QWidget()          # owns the service: Qt ends it with the widget, before Python exits
    qtbot.addWidget(holder)
    s = TaggerService(holder)
    try:
        with qtbot.waitSignal(s.loaded, timeout=60_000):
            s.load(str(tiny_bundle), "cpu", 0)
        docs, segs = [], []
        s.documentTagged.connect(lambda job, doc: docs.append(doc))
        s.segmentTagged.connect(lambda job, a, b, ents, n: segs.append((a, b, len(ents))))
        with qtbot.waitSignal(s.tagFinished, timeout=120_000) as blocker:
            s.tag(TEXT, None, TagOptions(assertion=False))
        assert blocker.args[1] == "done"
        (doc,) = docs
        assert _key(doc) == _key(cli_doc)
        assert [(a, b) for a, b, _ in segs] == [(x.start, x.end) for x in doc.segments]
        assert len(doc.segments) >= 4
        assert doc.meta["bundle"] == cli_doc.meta["bundle"]
    finally:
        s.shutdown()


# -- only the pipeline segments text and maps windows to entities -------------------------------
ONLY_PIPELINE = {"segment_text", "windows", "model_windows", "tag_words_scored"}
DEFINED_IN = {"segment_text": "runtime/segment.py", "windows": "runtime/segment.py",
              "model_windows": "runtime/pipeline.py", "tag_words_scored": "runtime/decoding.py"}


def _calls(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
            if name in ONLY_PIPELINE:
                names.add(name)
    return names


def test_no_module_but_the_pipeline_segments_or_maps_windows():
    offenders = {}
    for folder in ("runtime", "desktop", "export"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel == "runtime/pipeline.py":
                continue
            calls = {n for n in _calls(path) if DEFINED_IN[n] != rel or n == "tag_words_scored"}
            # decoding.tag_words (all passes of one task, sorted) is the decoder's own helper
            if rel == "runtime/decoding.py":
                calls.discard("tag_words_scored")
            if calls:
                offenders[rel] = sorted(calls)
    assert offenders == {}


def test_the_check_sees_a_call(tmp_path):
    p = tmp_path / "x.py"
    p.write_text("from biotag.runtime.segment import segment_text\nsegment_text('a')\nself.windows(w)\n")
    assert _calls(p) == {"segment_text", "windows"}


# -- eval-model --profile: types compared as the profile names them ------------------------------
def test_profile_scoring_collapses_jnlpba_types_to_gene():
    from biotag.runtime.document import Entity
    from biotag.runtime.evaluation.model_eval import profile_scoring
    from biotag.runtime.prompting import Task

    text = "IL-2 gene and IL-2 mRNA in T cells of mice"
    gold = Document("g", text, [Entity(0, 4, "Protein", "IL-2"), Entity(0, 9, "DNA", "IL-2 gene"),
                                Entity(14, 23, "RNA", "IL-2 mRNA"), Entity(27, 34, "CellType", "T cells")], "en")
    pred = Document("g", text, [Entity(0, 4, "Gene", "IL-2", 0.9), Entity(0, 4, "Protein", "IL-2", 0.8),
                                Entity(14, 23, "Gene", "IL-2 mRNA", 0.7), Entity(38, 42, "Species", "mice", 0.9),
                                Entity(27, 34, "CellType", "T cells", 0.6)], "en")
    (g,), (p,) = profile_scoring([gold], [pred], Task.for_corpus("jnlpba"))
    assert sorted((e.start, e.end, e.type) for e in g.entities) == [
        (0, 4, "Gene"), (0, 9, "Gene"), (14, 23, "Gene"), (27, 34, "CellType")]
    # Species is not a jnlpba type; the two IL-2 predictions are one Gene span (the best score kept)
    assert sorted((e.start, e.end, e.type, e.score) for e in p.entities) == [
        (0, 4, "Gene", 0.9), (14, 23, "Gene", 0.7), (27, 34, "CellType", 0.6)]


def test_every_single_file_format_carries_its_writer():
    from biotag.runtime.batch import render
    from biotag.runtime.formats import FORMATS

    doc = Document("d", "Aspirin helps.", [], "en")
    for name, f in FORMATS.items():
        assert (f.dumps is None) == f.directory, name
        if f.dumps is not None:
            assert render(doc, name) == f.dumps([doc])
