"""Bad input and faults on the installed CLI, with the tiny test bundle: each a clear one-line error
(with the documented exit code) or a correct result, never a traceback or silent loss."""
import json
import math
import os
import stat
import subprocess
import sys
import xml.dom.minidom
from pathlib import Path

import pytest

from biotag.runtime.cli import main

REPO = Path(__file__).resolve().parents[1]


def run_cli(args, timeout=300, env=None, **kw):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "biotag.runtime.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=e, **kw)


def tag(bundle, *args, **kw):
    return run_cli(["tag", *args, "--bundle", bundle, "--threads", "1"], **kw)


def no_traceback(r):
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    assert "Exception ignored" not in r.stderr, r.stderr


# -- Ctrl-C ----------------------------------------------------------------------------------
CTRL_C = r"""
import os, signal, sys
from biotag.runtime import head

orig_init = head.HiddenCapture.__init__


class Lib:   # libggml-base, with a Ctrl-C arriving while llama.cpp runs biotag's eval callback
    def __init__(self, g):
        self._g, self.n = g, 0

    def __getattr__(self, name):
        return getattr(self._g, name)

    def ggml_get_name(self, t):
        self.n += 1
        if self.n == int(os.environ["AT"]):
            # what Python's SIGINT handler does at this point of the callback, without depending
            # on when the operating system delivers a signal sent with os.kill
            signal.default_int_handler(signal.SIGINT, None)
        return self._g.ggml_get_name(t)


def init(self, *a, **k):
    orig_init(self, *a, **k)
    self._g = Lib(self._g)


head.HiddenCapture.__init__ = init
from biotag.runtime.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("at", [50, 3000])   # during the load-time probe, during tagging
def test_ctrl_c_inside_llama_callback_is_interrupted_130(tiny_bundle, tmp_path, at):
    src = tmp_path / "long.txt"
    src.write_text(" ".join(["The patient had fever and cough after aspirin."] * 400), encoding="utf-8")
    script = tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C, encoding="utf-8")
    r = subprocess.run([sys.executable, str(script), "tag", str(src), "--bundle", str(tiny_bundle),
                        "--threads", "1"], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "AT": str(at)})
    no_traceback(r)
    assert r.returncode == 130, r.stderr
    assert r.stderr.strip().splitlines()[-1] == "biotag: interrupted"
    assert "hidden states" not in r.stderr and r.stdout == ""


# -- encodings -------------------------------------------------------------------------------
@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8-sig"])
def test_text_with_a_byte_order_mark_is_read(codec):
    import codecs

    from biotag.runtime.textio import decode_text

    text = "Fever 发热 after aspirin.\r\n"
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}.get(codec, b"")
    data = bom + text.encode(codec)
    assert decode_text(data) == text                       # by its mark
    if codec.startswith("utf-16"):
        assert decode_text(data, encoding="utf-16") == text    # asked for explicitly
    assert not decode_text(data).startswith("\ufeff")


def test_utf16_file_is_tagged_and_utf16_binary_refused(tiny_bundle, tmp_path):
    from biotag.runtime.errors import InputError
    from biotag.runtime.textio import decode_text

    f = tmp_path / "note16.txt"
    f.write_bytes("fever and cough".encode("utf-16"))
    for extra in ([], ["--encoding", "utf-16"]):
        r = tag(tiny_bundle, f, *extra)
        no_traceback(r)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["text"] == "fever and cough"
    with pytest.raises(InputError, match="binary"):
        decode_text("ab\x00\x01\x02 binary".encode("utf-16"))
    with pytest.raises(InputError, match="binary"):
        decode_text(b"\x89PNG\r\n\x1a\n\x00\x00")


# -- arguments, checked before the model is loaded ---------------------------------------------
@pytest.mark.parametrize("args,expect", [
    (["--threshold", "2"], "--threshold"), (["--threshold", "nan"], "--threshold"),
    (["--threshold", "-5"], "--threshold"), (["--workers", "0"], "--workers"),
    (["--threads", "0"], "--threads"), (["--threads", "-1"], "--threads"),
    (["--encoding", "no-such-codec"], "unknown encoding"), (["--encoding", "rot13"], "not a text encoding"),
])
def test_bad_arguments_are_refused_up_front(tmp_path, capsys, args, expect):
    f = tmp_path / "a.txt"
    f.write_text("fever", encoding="utf-8")
    missing = tmp_path / "no-bundle"   # never reached: the arguments are refused first
    with pytest.raises(SystemExit) as exc:
        main(["tag", str(f), "--bundle", str(missing), *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert expect in err and "not a model bundle" not in err


def test_types_unknown_is_refused_with_the_valid_list(tmp_path, capsys):
    f = tmp_path / "a.txt"
    f.write_text("fever", encoding="utf-8")
    rc = main(["tag", str(f), "--types", "NotAType", "--bundle", str(tmp_path / "nothing")])
    err = capsys.readouterr().err
    assert rc == 2 and "unknown entity type 'NotAType'" in err and "Disease, Chemical" in err


def test_types_case_is_matched_with_a_note(tiny_bundle, tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("fever and aspirin", encoding="utf-8")
    r = tag(tiny_bundle, f, "--types", "disease", "--no-selector")
    assert r.returncode == 0, r.stderr
    assert "--types disease is read as Disease" in r.stderr
    doc = json.loads(r.stdout)
    assert {e["type"] for e in doc["entities"]} <= {"Disease"}
    # a canonical type the bundle's instructions never ask for: refused, not 0 entities in silence
    r = tag(tiny_bundle, f, "--types", "Gene")
    no_traceback(r)
    assert r.returncode == 2 and "tags none of Gene" in r.stderr


@pytest.mark.parametrize("kind", ["file", "under-file"])
def test_bad_out_is_refused_before_loading(tmp_path, capsys, kind):
    f = tmp_path / "a.txt"
    f.write_text("fever", encoding="utf-8")
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    out = blocker if kind == "file" else blocker / "sub"
    rc = main(["tag", str(f), "--out", str(out), "--bundle", str(tmp_path / "no-bundle")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "--out" in err and "not a model bundle" not in err and "internal error" not in err


def test_threads_reach_llama_as_n_threads_and_n_threads_batch(tiny_bundle, monkeypatch):
    import llama_cpp

    from biotag.runtime.errors import ModelError
    from biotag.runtime.llm import load_llama

    seen = {}
    orig = llama_cpp.Llama.__init__

    def spy(self, *a, **k):
        seen.update(k)
        return orig(self, *a, **k)

    monkeypatch.setattr(llama_cpp.Llama, "__init__", spy)
    llm = load_llama(tiny_bundle / "model.gguf", n_threads=1, head="llama")
    assert seen["n_threads"] == 1 and seen["n_threads_batch"] == 1
    assert llm.context_params.n_threads == 1 and llm.context_params.n_threads_batch == 1
    for bad in (0, -1):
        with pytest.raises(ModelError, match="threads"):
            load_llama(tiny_bundle / "model.gguf", n_threads=bad)


# -- several documents to stdout --------------------------------------------------------------
@pytest.fixture(scope="module")
def three_notes(tmp_path_factory):
    d = tmp_path_factory.mktemp("notes")
    for k, t in enumerate(["fever and cough", "患者发热三天", "aspirin, asthma"]):
        (d / f"n{k}.txt").write_text(t, encoding="utf-8")
    return d


@pytest.mark.parametrize("fmt", ["bioc-xml", "bioc-json", "csv", "html", "conll", "pubtator", "jsonl"])
def test_several_documents_to_stdout_are_one_stream(tiny_bundle, three_notes, fmt):
    from biotag.runtime.formats import get_format

    r = tag(tiny_bundle, three_notes, "--format", fmt)
    no_traceback(r)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    if fmt == "bioc-xml":
        assert out.count("<?xml") == 1 and out.count("<collection") == 1
        xml.dom.minidom.parseString(out.encode("utf-8"))
    elif fmt == "bioc-json":
        assert len(json.loads(out)["documents"]) == 3
    elif fmt == "csv":
        assert out.count("doc_id,start") == 1
    elif fmt == "html":
        assert out.lower().count("<html") == 1 and out.lower().count("</html>") == 1
        assert all(f">{t}<" in out or t in out for t in ("fever and cough", "患者发热三天"))
    if fmt != "html":   # every document reads back, with its text
        p = Path(str(three_notes) + f".{fmt}.out")
        p.write_text(out, encoding="utf-8", newline="")
        try:
            docs = get_format(fmt).read(p)
        finally:
            p.unlink()
        assert sorted(d.id for d in docs) == ["n0", "n1", "n2"]
        assert {d.text for d in docs} == {"fever and cough", "患者发热三天", "aspirin, asthma"}


# -- output names and unique ids ----------------------------------------------------------------
def test_two_inputs_with_one_name_keep_both(tiny_bundle, tmp_path):
    src = tmp_path / "in"
    (src / "a").mkdir(parents=True)
    (src / "note.txt").write_text("fever one", encoding="utf-8")
    (src / "note.md").write_text("fever two", encoding="utf-8")
    (src / "a" / "x.txt").write_text("fever three", encoding="utf-8")
    (src / "a__x.txt").write_text("fever four", encoding="utf-8")
    (src / "X.txt").write_text("fever five", encoding="utf-8")
    out = tmp_path / "out"
    r = tag(tiny_bundle, src, "--out", out)
    no_traceback(r)
    assert r.returncode == 0 and "5 document(s)" in r.stderr, r.stderr
    texts = {json.loads(p.read_text())["id"]: json.loads(p.read_text())["text"] for p in out.iterdir()}
    assert sorted(texts.values()) == ["fever five", "fever four", "fever one", "fever three", "fever two"]
    assert len({name.casefold() for name in os.listdir(out)}) == 5   # also on a case-blind disk
    assert "another input has the same name" in r.stderr
    r = tag(tiny_bundle, src, "--out", out)
    assert "5 document(s) already done" in r.stderr and r.returncode == 0
    # stdout: five documents, five ids
    r = tag(tiny_bundle, src)
    ids = [json.loads(line)["id"] for line in r.stdout.splitlines()]
    assert len(ids) == 5 == len(set(ids))


def test_brat_resume_with_ids_holding_slash_or_colon(tiny_bundle, tmp_path):
    from biotag.runtime.tag_cli import collect_inputs, output_name

    src = tmp_path / "in"
    for sub in ("a", "b"):
        (src / sub).mkdir(parents=True)
        (src / sub / "note.txt").write_text(f"fever in {sub}", encoding="utf-8")
    (src / "t:1.txt").write_text("fever at one", encoding="utf-8")
    ids = [i for i, _ in collect_inputs([str(src)])]
    assert sorted(ids) == ["a/note", "b/note", "t:1"]
    out = tmp_path / "out"
    r = tag(tiny_bundle, src, "--out", out, "--format", "brat")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.glob("*.ann")) == sorted(output_name(i, "brat") for i in ids)
    r = tag(tiny_bundle, src, "--out", out, "--format", "brat")
    assert "3 already done" in r.stderr and "0 document(s)" not in r.stderr or "nothing to do" in r.stderr


# -- bundles -----------------------------------------------------------------------------------
def _cache_bundle(tiny_bundle, tmp_path):
    """A bundle whose GGUF is cache-located, with a good copy in the cache and one in the folder."""
    import shutil

    b = tmp_path / "b"
    shutil.copytree(tiny_bundle, b)
    m = json.loads((b / "manifest.json").read_text())
    m["files"]["model.gguf"]["location"] = "cache"
    (b / "manifest.json").write_text(json.dumps(m))
    cache = tmp_path / "cache"
    (cache / "bundles" / "tiny-test-0").mkdir(parents=True)
    shutil.copy(tiny_bundle / "model.gguf", cache / "bundles" / "tiny-test-0" / "model.gguf")
    return b, cache


def test_bundle_verify_checks_and_names_the_gguf_that_is_loaded(tiny_bundle, tmp_path):
    b, cache = _cache_bundle(tiny_bundle, tmp_path)
    env = {"BIOTAG_CACHE": str(cache)}
    r = run_cli(["bundle", "verify", b], env=env)
    assert r.returncode == 0 and str(b / "model.gguf") in r.stdout, r.stdout + r.stderr
    data = bytearray((b / "model.gguf").read_bytes())
    data[len(data) // 2] ^= 0xFF                       # a flipped byte in the folder's copy
    (b / "model.gguf").write_bytes(bytes(data))
    r = run_cli(["bundle", "verify", b], env=env)
    no_traceback(r)
    assert r.returncode == 3 and str(b / "model.gguf") in r.stderr
    r = tag(b, "-", input="fever", env=env)
    assert r.returncode == 3 and str(b / "model.gguf") in r.stderr
    (b / "model.gguf").unlink()                        # no copy in the folder: the cache's
    r = run_cli(["bundle", "verify", b], env=env)
    assert r.returncode == 0 and str(cache / "bundles" / "tiny-test-0" / "model.gguf") in r.stdout


@pytest.mark.parametrize("manifest", ["[]", '"text"', "3", "null",
                                      '{"schema_version": 1, "files": []}',
                                      '{"schema_version": 1, "files": {}, "llm": "model.gguf"}',
                                      '{"schema_version": 1, "files": {}, "llm": {"file": "m.gguf", '
                                      '"task_bias": {"bc2gm": "high"}}}'])
def test_manifest_that_is_json_but_not_a_manifest(tmp_path, manifest):
    (tmp_path / "manifest.json").write_text(manifest)
    for args in (["bundle", "verify", tmp_path], ["tag", "-", "--bundle", tmp_path]):
        r = run_cli(args, input="fever")
        no_traceback(r)
        assert r.returncode == 3 and "manifest" in r.stderr, r.stderr


# -- empty files and exit codes ---------------------------------------------------------------
def test_empty_files_and_exit_codes(tiny_bundle, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "blank.txt").write_text("  \n\t\n", encoding="utf-8")
    (src / "empty.txt").write_text("", encoding="utf-8")
    r = tag(tiny_bundle, src)
    assert r.returncode == 0, r.stderr
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(d["id"], d["entities"]) for d in docs] == [("blank", []), ("empty", [])]
    assert "blank is empty" in r.stderr and "empty is empty" in r.stderr
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\x00\x01binary")
    r = tag(tiny_bundle, bad)                         # the only input cannot be read: exit 2
    no_traceback(r)
    assert r.returncode == 2 and "skipped bad" in r.stderr
    r = tag(tiny_bundle, bad, src / "blank.txt")      # some tagged, some failed: exit 1
    assert r.returncode == 1
    r = tag(tiny_bundle, tmp_path / "missing.txt")    # a missing input: exit 2, before loading
    assert r.returncode == 2 and "no such file" in r.stderr
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "empty or whitespace-only" in readme and "exit code is 1" in readme and "2 when no input" in readme


# -- permissions -------------------------------------------------------------------------------
@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_output_files_follow_the_umask(tiny_bundle, tmp_path):
    from biotag.runtime.textio import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "x.txt", "a")
        assert stat.S_IMODE((tmp_path / "x.txt").stat().st_mode) == 0o644
        os.chmod(tmp_path / "x.txt", 0o640)           # a replaced file keeps its mode
        atomic_write_text(tmp_path / "x.txt", "b")
        assert stat.S_IMODE((tmp_path / "x.txt").stat().st_mode) == 0o640
        os.umask(0o002)
        atomic_write_text(tmp_path / "y.txt", "a")
        assert stat.S_IMODE((tmp_path / "y.txt").stat().st_mode) == 0o664
    finally:
        os.umask(old)
    f = tmp_path / "a.txt"
    f.write_text("fever", encoding="utf-8")
    r = subprocess.run(["sh", "-c", f"umask 022 && exec {sys.executable} -m biotag.runtime.cli tag {f} "
                        f"--out {tmp_path / 'out'} --bundle {tiny_bundle} --threads 1"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE((tmp_path / "out" / "a.jsonl").stat().st_mode) == 0o644


# -- eval --------------------------------------------------------------------------------------
def test_eval_refuses_float_offsets_like_convert(tmp_path):
    gold = tmp_path / "g.jsonl"
    pred = tmp_path / "p.jsonl"
    gold.write_text(json.dumps({"id": "d", "text": "aspirin x", "entities": [
        {"start": 0, "end": 7, "type": "Chemical"}]}) + "\n")
    pred.write_text(json.dumps({"id": "d", "text": "aspirin x", "entities": [
        {"start": 0.0, "end": 7.9, "type": "Chemical"}]}) + "\n")
    r = run_cli(["eval", "--gold", gold, "--pred", pred])
    no_traceback(r)
    assert r.returncode == 2 and "p.jsonl:1" in r.stderr and "integers" in r.stderr
    r = run_cli(["convert", pred, tmp_path / "o.csv", "--from", "jsonl", "--to", "csv"])
    assert r.returncode == 2 and "integers" in r.stderr


# -- long documents ----------------------------------------------------------------------------
def test_progress_within_a_long_document(tiny_bundle):
    from biotag.runtime.tagger import Tagger

    t = Tagger.load(tiny_bundle, device="cpu", threads=1)
    seen = []
    t.on_progress = lambda doc_id, done, total: seen.append((doc_id, done, total))
    text = "Fever. " * 40
    t.tag(text, doc_id="long")
    assert len(seen) >= 10 and seen[-1][1] == len(text)
    assert [d for _, d, _ in seen] == sorted(d for _, d, _ in seen)
    assert {(i, n) for i, _, n in seen} == {("long", len(text))}


def test_progress_lines_for_a_long_document_without_a_terminal(tiny_bundle, tmp_path, monkeypatch, capsys):
    from biotag.runtime import tag_cli

    monkeypatch.setattr(tag_cli, "LONG_DOCUMENT", 100)
    f = tmp_path / "long.txt"
    f.write_text("Fever and cough. " * 30, encoding="utf-8")
    rc = main(["tag", str(f), "--bundle", str(tiny_bundle), "--threads", "1", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 0, err
    lines = [x for x in err.splitlines() if x.startswith("biotag tag: long: ")]
    assert 3 <= len(lines) <= 11 and lines[-1].startswith("biotag tag: long: 100% of 510 characters"), err
    rc = main(["tag", str(f), "--bundle", str(tiny_bundle), "--threads", "1", "--quiet"])
    assert "% of" not in capsys.readouterr().err


def test_nan_threshold_is_not_a_number_in_the_unit_interval():
    import argparse

    from biotag.runtime.tag_cli import _unit_interval

    for bad in ("nan", "inf", "-0.1", "1.0001", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            _unit_interval(bad)
    assert _unit_interval("0") == 0.0 and _unit_interval("1") == 1.0 and not math.isnan(_unit_interval("0.5"))


# -- a quiet first run -------------------------------------------------------------------------
FIRST_RUN = r"""
import sys
from pathlib import Path
import biotag.models.gemma as gemma
gemma.base_gguf_path = lambda: Path(sys.argv[2])      # the tiny base stands in for Gemma's package
from biotag.export.bundle import ensure_files
from biotag.runtime.bundle import Bundle
from biotag.runtime.llm import load_llama
b = Bundle.open(sys.argv[1])
ensure_files(b)
b.verify()
load_llama(b.llm_path())
print("loaded")
"""


def test_first_run_rebuild_prints_one_line_not_llama_cpp_log(tmp_path):
    pytest.importorskip("gguf")
    sys.path.insert(0, str(Path(__file__).parent))
    from test_export_llm import write_adapter, write_tiny_gemma3

    from biotag.export.merge import export_llm
    from biotag.runtime.bundle import sha256_file

    base = write_tiny_gemma3(tmp_path / "base.gguf")
    b = tmp_path / "bundle"
    write_adapter(b)
    ref = export_llm(base, b, tmp_path / "ref.gguf", "q4_k_m", progress=False)
    manifest = {"schema_version": 1, "name": "first-run", "version": "0",
                "files": {"model.gguf": {"sha256": sha256_file(ref), "size": ref.stat().st_size,
                                         "location": "cache",
                                         "rebuild": {"adapter": ".", "quant": "q4_k_m"}}},
                "llm": {"file": "model.gguf", "quant": "q4_k_m", "format": "S"}, "selector": None}
    (b / "manifest.json").write_text(json.dumps(manifest))
    script = tmp_path / "first_run.py"
    script.write_text(FIRST_RUN, encoding="utf-8")

    def first_run(cache, **env):
        return subprocess.run([sys.executable, str(script), str(b), str(base)], capture_output=True, text=True,
                              timeout=300, env={**os.environ, "BIOTAG_CACHE": str(cache), **env})

    r = first_run(tmp_path / "cache1")
    assert r.returncode == 0 and r.stdout.strip() == "loaded", r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("biotag: building the model"), r.stderr
    r = first_run(tmp_path / "cache1")                  # built: nothing at all
    assert r.returncode == 0 and r.stderr == ""
    r = first_run(tmp_path / "cache2", BIOTAG_LLAMA_LOG="1")   # llama.cpp's own log on request
    assert r.returncode == 0 and "llama_model_loader" in r.stderr and len(r.stderr.splitlines()) > 20


def test_quantizer_reports_its_tensors_and_names_llama_cpp_on_failure(tiny_bundle, tmp_path):
    from biotag.export.quantize import quantize_gguf
    from biotag.runtime.errors import ModelError

    seen = []
    q = quantize_gguf(tiny_bundle / "model.gguf", tmp_path / "q.gguf", "q4_k_m", nthread=1,
                      on_tensor=lambda k, n: seen.append((k, n)))
    assert q.is_file() and seen and seen[-1][0] == seen[-1][1] == len(seen)
    with pytest.raises(ModelError, match="llama.cpp: "):   # already quantized: llama.cpp's reason, quoted
        quantize_gguf(q, tmp_path / "again.gguf", "q8_0")


# -- no network, no telemetry --------------------------------------------------------------------
def build_fake_selector_bundle(root: Path, tiny_bundle: Path) -> Path:
    """The tiny bundle plus a selector: a word-level tokenizer with the marker tokens and an ONNX
    graph that gives every candidate logit 0 (probability 0.5), enough for onnxruntime to run."""
    import shutil

    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    from tokenizers import Tokenizer, models, pre_tokenizers

    from biotag.runtime.bundle import sha256_file
    from biotag.runtime.selector import META_KEY

    shutil.copytree(tiny_bundle, root)
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[E]", "[/E]", "fever"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.save(str(root / "tokenizer.json"))
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["n", "l"])
    att = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["n", "l"])
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 1])
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    graph = helper.make_graph([
        helper.make_node("Cast", ["attention_mask"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["f", "axes"], ["s"], keepdims=1),
        helper.make_node("Mul", ["s", "zero"], ["logits"])], "fake_selector", [ids, att], [out],
        initializer=[zero, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    meta = {"format_version": 1, "open_id": 4, "close_id": 5, "vocab_size": len(vocab), "max_len": 64}
    helper.set_model_props(model, {META_KEY: json.dumps(meta)})
    onnx.save(model, str(root / "selector.onnx"))
    m = json.loads((root / "manifest.json").read_text())
    for f in ("selector.onnx", "tokenizer.json"):
        m["files"][f] = {"sha256": sha256_file(root / f), "size": (root / f).stat().st_size}
    m["selector"] = {"file": "selector.onnx", "tokenizer": "tokenizer.json", "thresholds": {}, "default": 0.4}
    (root / "manifest.json").write_text(json.dumps(m))
    return root


TRACE_ARGS = ["strace", "-f", "-qq", "-e", "trace=socket,connect,sendto,sendmsg"]
NET_CALL = __import__("re").compile(r"socket\(AF_INET6?\b|sa_family=AF_INET6?\b")


def network_calls(code: str, tmp_path: Path, name: str) -> list[str]:
    """The IPv4/IPv6 socket system calls of a Python process (and its children) run inside a new,
    empty network namespace, with a fresh HOME."""
    import shutil

    if not shutil.which("strace") or not shutil.which("unshare"):
        pytest.skip("needs strace and unshare (Debian: strace, util-linux)")
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot create a network namespace here (unshare -n needs root or user namespaces)")
    log = tmp_path / f"{name}.strace"
    home = tmp_path / f"{name}-home"
    home.mkdir()
    script = tmp_path / f"{name}.py"
    script.write_text(code, encoding="utf-8")
    r = subprocess.run(["unshare", "-n", *TRACE_ARGS, "-o", str(log), sys.executable, str(script)],
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1"})
    assert r.returncode == 0, r.stderr
    return [x for x in log.read_text().splitlines() if NET_CALL.search(x)]


def test_tagging_makes_no_network_calls_and_no_telemetry(tiny_bundle, tmp_path):
    """onnxruntime's telemetry looks up Microsoft's event host from native code several seconds after
    a session starts: the process stays alive 15 s after tagging with the selector to give it time."""
    b = build_fake_selector_bundle(tmp_path / "sel-bundle", tiny_bundle)
    note = tmp_path / "note.txt"
    note.write_text("fever and cough after aspirin", encoding="utf-8")
    tag_code = (f"import sys, time\nfrom biotag.runtime.cli import main\n"
                f"rc = main(['tag', {str(note)!r}, '--bundle', {str(b)!r}, '--threads', '1', '--out', "
                f"{str(tmp_path / 'out')!r}])\nassert rc == 0, rc\n"
                f"import biotag.runtime.tagger as t\nt.Tagger.load({str(b)!r}, device='cpu', threads=1)\n"
                f"time.sleep(15)\n")
    calls = network_calls(tag_code, tmp_path, "tag")
    assert json.loads((tmp_path / "out" / "note.jsonl").read_text())["meta"]["bundle"] == "tiny-test 0"
    assert calls == [], calls
    assert not (tmp_path / "tag-home" / ".cache" / "Microsoft").exists()
    # positive control: the same check catches a name lookup planted on purpose
    planted = "import socket\ntry:\n    socket.getaddrinfo('biotag-planted.invalid', 443)\nexcept OSError:\n    pass\n"
    assert network_calls(planted, tmp_path, "planted") != []


def test_gui_tagging_makes_no_network_calls(tiny_bundle, tmp_path):
    pytest.importorskip("PySide6")
    from conftest import QT_GUI_ERROR

    if QT_GUI_ERROR:
        pytest.skip(QT_GUI_ERROR)
    b = build_fake_selector_bundle(tmp_path / "sel-bundle", tiny_bundle)
    note = tmp_path / "note.txt"
    note.write_text("fever and cough after aspirin", encoding="utf-8")
    shot = tmp_path / "shot.png"
    gui_code = (f"import os, sys, time\nos.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
                f"from biotag.desktop.app import main\n"
                f"rc = main([{str(note)!r}, '--bundle', {str(b)!r}, '--settings', {str(tmp_path / 's.ini')!r}, "
                f"'--tag', '--screenshot', {str(shot)!r}])\nassert rc == 0, rc\ntime.sleep(15)\n")
    calls = network_calls(gui_code, tmp_path, "gui")
    assert shot.is_file() and calls == [], calls


def test_default_threads_leave_the_busy_cores_alone():
    from biotag.runtime.llm import busy_cpus, default_threads, threads_for

    assert threads_for(2, 0.0) == 2 and threads_for(2, 0.2) == 2
    assert threads_for(2, 0.9) == 1 and threads_for(2, 2.0) == 1      # never fewer than one
    assert threads_for(16, 0.0) == 4                                   # at most four
    assert threads_for(8, 5.2) == 3
    assert 0.0 <= busy_cpus(0.05) <= (__import__("os").cpu_count() or 1) + 0.01
    assert 1 <= default_threads() <= 4
