"""`biotag compare`: two models' predictions on the same documents, per corpus and over their mean."""
import json

import pytest

from biotag.runtime.cli import main
from biotag.runtime.document import Document, Entity
from biotag.runtime.errors import InputError
from biotag.runtime.evaluation import compare as C
from biotag.runtime.evaluation.scoring import paired_bootstrap, paired_bootstrap_mean

TEXT = "aspirin eases fever and headache"
ENTS = [Entity(0, 7, "Chemical"), Entity(14, 19, "Disease"), Entity(24, 32, "Disease")]


def gold(n: int, prefix: str) -> list[Document]:
    return [Document(f"{prefix}{i}", TEXT, list(ENTS)) for i in range(n)]


def found(docs: list[Document], share: float) -> list[Document]:
    """Predictions that find all entities in ``share`` of the documents and none in the rest."""
    k = round(share * len(docs))
    return [d.copy(d.entities if i < k else []) for i, d in enumerate(docs)]


def test_a_model_better_everywhere_beats_the_old_one():
    sets = {c: (g, found(g, 0.4), found(g, 0.8)) for c, g in (("x", gold(60, "x")), ("y", gold(40, "y")))}
    r = paired_bootstrap_mean(sets, rounds=500)
    assert r["mean"]["delta"] > 0 and r["mean"]["low"] > 0
    assert all(v["low"] > 0 for v in r["corpora"].values())
    assert C.verdict(r) == {"beats": True, "worse": []}


def test_a_corpus_significantly_worse_blocks_the_model_even_when_the_mean_gains():
    gx, gy = gold(80, "x"), gold(80, "y")
    sets = {"x": (gx, found(gx, 0.1), found(gx, 0.95)), "y": (gy, found(gy, 0.8), found(gy, 0.5))}
    r = paired_bootstrap_mean(sets, rounds=500)
    assert r["mean"]["low"] > 0
    assert r["corpora"]["y"]["high"] < 0
    assert C.verdict(r) == {"beats": False, "worse": ["y"]}


def test_identical_predictions_do_not_beat():
    g = gold(30, "x")
    r = paired_bootstrap_mean({"x": (g, found(g, 0.5), found(g, 0.5))}, rounds=200)
    assert r["mean"]["delta"] == 0 and r["mean"]["low"] == 0 == r["mean"]["high"]
    assert not C.verdict(r)["beats"]


def test_one_corpus_gives_the_paired_bootstrap_of_that_corpus():
    g = gold(50, "x")
    a, b = found(g, 0.3), found(g, 0.6)
    one = paired_bootstrap_mean({"x": (g, a, b)}, rounds=300, seed=4)
    ref = paired_bootstrap(g, a, b, rounds=300, seed=4)
    for k in ("f1_a", "f1_b", "delta", "low", "high"):
        assert one["corpora"]["x"][k] == pytest.approx(ref[k])
        assert one["mean"][k] == pytest.approx(ref[k])


def write(folder, corpus, docs):
    folder.mkdir(exist_ok=True)
    (folder / f"{corpus}.dev.jsonl").write_text("".join(json.dumps(d.to_json()) + "\n" for d in docs),
                                                encoding="utf-8")


@pytest.fixture
def golds(monkeypatch):
    table = {"ncbi-disease": gold(50, "n"), "bc5cdr": gold(50, "b")}

    def gold_docs(corpus, split, ids, data_dir=None):
        by_id = {d.id: d for d in table[corpus]}
        return [by_id[i] for i in ids]

    monkeypatch.setattr("biotag.runtime.evaluation.selector_eval.gold_docs", gold_docs)
    return table


def test_the_command_prints_a_table_and_a_verdict(tmp_path, golds, capsys):
    for c, g in golds.items():
        write(tmp_path / "old", c, found(g, 0.3))
        write(tmp_path / "new", c, found(g, 0.9))
    assert main(["compare", str(tmp_path / "old"), str(tmp_path / "new"), "--corpus", *golds,
                 "--rounds", "300"]) == 0
    out = capsys.readouterr().out
    assert "| ncbi-disease | 50 |" in out and "| **mean** |" in out
    assert "B beats A" in out
    assert main(["compare", str(tmp_path / "new"), str(tmp_path / "old"), "--corpus", *golds,
                 "--rounds", "300", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["beats"] is False and sorted(r["worse"]) == sorted(golds)


def test_predictions_on_different_documents_are_refused(tmp_path, golds):
    g = golds["bc5cdr"]
    write(tmp_path / "old", "bc5cdr", g[:40])
    write(tmp_path / "new", "bc5cdr", g[10:])
    with pytest.raises(InputError, match="different documents"):
        C.compare(tmp_path / "old", tmp_path / "new", ["bc5cdr"])
    with pytest.raises(InputError, match="no predictions"):
        C.compare(tmp_path / "old", tmp_path / "missing", ["bc5cdr"])


def test_profile_types_score_fine_gene_types_as_gene(tmp_path, monkeypatch):
    """jnlpba's own pass predicts Protein/DNA; the profile pass predicts Gene. Scored with the corpus's
    types the profile pass finds nothing; with --profile-types both are scored as Gene, so a
    Protein predicted for a DNA span counts as right, and the two passes compare on equal terms."""
    text = "IL-2 binds the IL-2 promoter"
    g = [Document(f"j{i}", text, [Entity(0, 4, "Protein"), Entity(15, 28, "DNA")]) for i in range(30)]
    own = [d.copy([Entity(0, 4, "Protein"), Entity(15, 28, "Protein")]) for d in g]
    prof = [d.copy([Entity(0, 4, "Gene")] + ([Entity(15, 28, "Gene")] if i % 2 else [])) for i, d in enumerate(g)]
    monkeypatch.setattr("biotag.runtime.evaluation.selector_eval.gold_docs",
                        lambda corpus, split, ids, data_dir=None: [{d.id: d for d in g}[i] for i in ids])
    write(tmp_path / "own", "jnlpba", own)
    write(tmp_path / "prof", "jnlpba", list(reversed(prof)))   # another order: matched by document id
    plain = C.compare(tmp_path / "own", tmp_path / "prof", ["jnlpba"], rounds=200)["corpora"]["jnlpba"]
    assert plain["f1_a"] == pytest.approx(50) and plain["f1_b"] == 0
    typed = C.compare(tmp_path / "own", tmp_path / "prof", ["jnlpba"], rounds=200,
                      profile_types=True)["corpora"]["jnlpba"]
    assert typed["f1_a"] == pytest.approx(100) and typed["f1_b"] == pytest.approx(100 * 2 * 45 / (45 + 60))
    assert typed["high"] < 0


def test_misses_say_what_became_of_each_gold_entity(tmp_path, golds, capsys):
    text = "aspirin caused acute renal failure and fever"
    g = [Document("d1", text, [Entity(0, 7, "Chemical", "aspirin"), Entity(15, 34, "Disease", "acute renal failure"),
                               Entity(39, 44, "Disease", "fever")])]
    p = [Document("d1", text, [Entity(0, 7, "Chemical", "aspirin"), Entity(21, 34, "Disease", "renal failure")])]
    assert C.miss_reasons(g, p) == {"gold": 3, "found": 1, "boundary": 1, "not_tagged": 1, "wrong_type": {}}
    p = [Document("d1", text, [Entity(0, 7, "Gene", "aspirin"), Entity(39, 44, "Symptom", "fever")])]
    m = C.miss_reasons(g, p)
    assert m["found"] == 0 and m["wrong_type"] == {"Chemical->Gene": 1, "Disease->Symptom": 1}
    assert m["not_tagged"] == 1 and m["boundary"] == 0
    # through the command: both folders, every corpus
    for c, gd in golds.items():
        write(tmp_path / "old", c, found(gd, 0.3))
        write(tmp_path / "new", c, found(gd, 0.9))
    assert main(["compare", str(tmp_path / "old"), str(tmp_path / "new"), "--corpus", *golds,
                 "--rounds", "50", "--misses", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    for c in golds:
        a, b = r["misses"][c]["a"], r["misses"][c]["b"]
        assert a["gold"] == b["gold"] > 0 and b["found"] > a["found"]
        assert a["found"] + a["boundary"] + a["not_tagged"] + sum(a["wrong_type"].values()) == a["gold"]
    assert main(["compare", str(tmp_path / "old"), str(tmp_path / "new"), "--corpus", *golds,
                 "--rounds", "50", "--misses"]) == 0
    assert "| **all** | B |" in capsys.readouterr().out
