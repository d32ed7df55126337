"""The runtime Tagger and `biotag tag` on a tiny random model built in the tests: exact offsets on
any text, resumable batches that survive kill -9, bad input, no network."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from biotag.runtime.cli import main
from biotag.runtime.tagger import TagOptions, Tagger

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tagger(tiny_bundle):
    return Tagger.load(tiny_bundle, device="cpu", threads=1)


def check_doc(doc, text):
    assert doc.text == text
    for e in doc.entities:
        assert 0 <= e.start < e.end <= len(text) and e.text == text[e.start:e.end]
        assert e.source == "model" and 0.0 <= e.score <= 1.0


def test_tags_english_and_chinese(tagger):
    text = "The patient had fever.\r\n患者发热三天。"
    doc = tagger.tag(text)
    check_doc(doc, text)
    assert [text[s.start:s.end] for s in doc.segments] == ["The patient had fever.", "患者发热三天。"]
    assert doc.meta["bundle"] == "tiny-test 0"


@pytest.mark.parametrize("text", ["", "   \n\t  ", "\u200b", "😀 fever 😀", "a\u202eb\u202c c",
                                  "CRLF\r\nline\r\n", "tab\there", "混合 mixed 中英 text"])
def test_odd_texts_never_crash(tagger, text):
    doc = tagger.tag(text)
    check_doc(doc, text)
    if not text.strip():
        assert doc.entities == []


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(list("ab 腹痛.\n\r\t😀-") + ["\u200b", "fever", "BRCA1"]), max_size=20).map("".join))
def test_offsets_exact_on_random_text(tagger, text):
    check_doc(tagger.tag(text), text)


def test_types_filter_and_threshold(tagger):
    text = "fever and cough with aspirin"
    doc = tagger.tag(text, opts=TagOptions(types=["Chemical"]))
    assert all(e.type == "Chemical" for e in doc.entities)
    doc = tagger.tag(text, opts=TagOptions(threshold=1.01))
    assert doc.entities == []


def test_long_segment_is_windowed(tagger):
    text = " ".join(["fever"] * 200) + "."
    doc = tagger.tag(text)
    check_doc(doc, text)


def test_user_dictionary_force(tagger, tmp_path):
    from biotag.runtime.dictionary import UserDictionary

    d = tmp_path / "dict.tsv"
    d.write_text("term\ttype\nXyloprofen\tChemical\nhigh fever\tSymptom\n", encoding="utf-8")
    ud = UserDictionary.load(d)
    text = "Gave xyloprofen for HIGH FEVER."
    doc = tagger.tag(text, opts=TagOptions(dictionary=ud, dictionary_mode="force"))
    got = {(e.text, e.type) for e in doc.entities if e.source == "dictionary"}
    assert got == {("xyloprofen", "Chemical"), ("HIGH FEVER", "Symptom")}


def run_cli(args, **kw):
    return subprocess.run([sys.executable, "-m", "biotag.runtime.cli", *args], capture_output=True,
                          text=True, timeout=300, **kw)


def test_cli_folder_resume_and_bad_files(tiny_bundle, tmp_path):
    src = tmp_path / "notes"
    src.mkdir()
    (src / "a.txt").write_text("fever and cough", encoding="utf-8")
    (src / "b.txt").write_text("患者发热", encoding="utf-8")
    (src / "c.txt").write_bytes(b"\x00\x01binary")
    (src / "d.txt").write_bytes(b"caf\xe9")
    out = tmp_path / "out"
    r = run_cli(["tag", str(src), "--out", str(out), "--bundle", str(tiny_bundle), "--threads", "1"])
    assert r.returncode == 1, r.stderr
    assert "skipped c" in r.stderr and "skipped d" in r.stderr and "Traceback" not in r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.jsonl", "b.jsonl"]
    doc = json.loads((out / "a.jsonl").read_text())
    assert doc["id"] == "a" and doc["text"] == "fever and cough"
    # second run: nothing to redo for a and b; d can be read with --errors replace
    r = run_cli(["tag", str(src), "--out", str(out), "--bundle", str(tiny_bundle), "--errors", "replace"])
    assert "2 already done" in r.stderr
    assert (out / "d.jsonl").exists() and not (out / "c.jsonl").exists()


def test_cli_stdin_jsonl(tiny_bundle):
    r = run_cli(["tag", "-", "--bundle", str(tiny_bundle)], input="fever\n")
    assert r.returncode == 0, r.stderr
    line = json.loads(r.stdout)
    assert line["id"] == "stdin" and line["text"] == "fever\n"


def test_kill_9_then_rerun_loses_and_duplicates_nothing(tiny_bundle, tmp_path):
    src = tmp_path / "many"
    src.mkdir()
    for k in range(40):
        (src / f"n{k:02d}.txt").write_text(f"fever {k} and cough after aspirin", encoding="utf-8")
    out = tmp_path / "out"
    args = [sys.executable, "-m", "biotag.runtime.cli", "tag", str(src), "--out", str(out),
            "--bundle", str(tiny_bundle), "--threads", "1"]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (out.exists() and len(list(out.glob("*.jsonl"))) >= 2):
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    done_before = {x.name for x in out.glob("*.jsonl")}
    assert 0 < len(done_before) < 40
    assert not [x for x in out.iterdir() if x.suffix != ".jsonl"] or all(
        x.name.startswith(".") for x in out.iterdir() if x.suffix != ".jsonl")
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    files = sorted(x.name for x in out.glob("*.jsonl"))
    assert files == [f"n{k:02d}.jsonl" for k in range(40)]
    for f in files:
        d = json.loads((out / f).read_text())
        assert d["id"] == f[:-6]


def test_no_network_needed(tiny_bundle, tmp_path):
    """Tagging works with every socket operation forbidden."""
    code = f"""
import socket, sys
def refuse(*a, **k): raise OSError("network disabled by test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
from biotag.runtime.cli import main
sys.exit(main(["tag", "-", "--bundle", {str(tiny_bundle)!r}]))
"""
    r = subprocess.run([sys.executable, "-c", code], input="fever and cough", capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["text"] == "fever and cough"


def test_missing_bundle_is_a_clear_error(tmp_path, capsys):
    rc = main(["tag", "-", "--bundle", str(tmp_path)])
    assert rc == 3
    assert "not a model bundle" in capsys.readouterr().err


def test_altered_model_is_refused(tiny_bundle, tmp_path):
    import shutil

    from biotag.runtime.errors import ModelError

    b = tmp_path / "b"
    shutil.copytree(tiny_bundle, b)
    data = (b / "model.gguf").read_bytes()
    (b / "model.gguf").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="model.gguf"):
        Tagger.load(b)


def test_selector_fusion_in_the_tagger(tagger):
    from biotag.runtime.document import Entity
    from biotag.runtime.errors import ModelError

    class Sel:
        def score(self, text, ents):
            return [0.25 for _ in ents]

    text = "aspirin caused asthma"
    found = {(0, 7, "Chemical"): Entity(0, 7, "Chemical", "aspirin", 0.64, "model"),
             (15, 21, "Disease"): Entity(15, 21, "Disease", "asthma", 0.04, "model")}
    saved = tagger.selector, tagger.thresholds, tagger.fusion
    try:
        tagger.selector, tagger.thresholds = Sel(), {"*": 0.3}
        tagger.fusion = "selector"      # 0.25 < 0.3: both dropped
        assert tagger._select(text, None, dict(found), TagOptions()) == []
        tagger.fusion = "geometric"     # sqrt(0.25 x 0.64) = 0.4 kept, sqrt(0.25 x 0.04) = 0.1 dropped
        kept = tagger._select(text, None, dict(found), TagOptions())
        assert [(e.text, e.score, e.meta["llm_score"], e.meta["selector_score"]) for e in kept] == \
            [("aspirin", 0.4, 0.64, 0.25)]
    finally:
        tagger.selector, tagger.thresholds, tagger.fusion = saved
    with pytest.raises(ModelError):
        Tagger(tagger.llm_path, fusion="product")


def test_a_bundles_task_bias_reaches_the_decoder(tmp_path):
    from conftest import build_tiny_bundle

    root = build_tiny_bundle(tmp_path / "b")
    mf = json.loads((root / "manifest.json").read_text())
    mf["llm"].update(marker_bias=1.0, task_bias={"linnaeus": 2.5})
    (root / "manifest.json").write_text(json.dumps(mf))
    t = Tagger.load(root, device="cpu", threads=1)
    assert t.decoder.bias_for("linnaeus") == 2.5 and t.decoder.bias_for("bc5cdr") == 1.0
    assert t.spec["task_bias"] == {"linnaeus": 2.5}
    # a worker process rebuilds the same tagger from the spec
    assert Tagger(**{**t.spec}).decoder.task_bias == {"linnaeus": 2.5}


def test_one_pass_runs_the_profile_instructions_of_a_model_trained_with_them(tmp_path):
    from conftest import build_tiny_bundle

    from biotag.runtime.errors import ModelError
    from biotag.runtime.profiles import ONE_PASS

    root = build_tiny_bundle(tmp_path / "b")
    # a model that never saw the profile instructions is refused, with what to do instead
    with pytest.raises(ModelError, match="without --one-pass"):
        Tagger.load(root, device="cpu", threads=1, one_pass=True)
    r = run_cli(["tag", "-", "--bundle", str(root), "--one-pass"], input="fever\n")
    assert r.returncode != 0 and "without --one-pass" in r.stderr and "Traceback" not in r.stderr
    (root / "config.json").write_text(json.dumps({"training_config": {"profile": {"share": 0.5}}}))
    t = Tagger.load(root, device="cpu", threads=1, one_pass=True)
    assert t.profiles == ONE_PASS
    assert [task.dataset for task in t.tasks_for("en", None)] == ["profile-en"]
    assert [task.dataset for task in t.tasks_for("zh", None)] == ["profile-zh"]
    assert Tagger(**t.spec).profiles == ONE_PASS          # worker processes tag the same way
    assert t.decoder.draft_words == Tagger.ONE_PASS_DRAFT_WORDS == Tagger(**t.spec).decoder.draft_words
    assert Tagger.load(root, device="cpu", threads=1).profiles == json.loads(
        (root / "manifest.json").read_text())["profiles"]  # without it: the bundle's instructions
    doc = t.tag("Fever and cough after aspirin.")
    assert all(e.meta.get("task") in (None, "profile-en") for e in doc.entities)
    r = run_cli(["tag", "-", "--bundle", str(root), "--one-pass", "--threads", "1"], input="fever\n")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["text"] == "fever\n"
