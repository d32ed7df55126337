"""The entity selector at run time: an ONNX span classifier that scores the tagger's candidates.

No torch, no transformers: onnxruntime + tokenizers only. Training (``biotag.models``) builds its
inputs with the very functions of this module, so the text a model was trained on and the text it
scores here are the same strings::

    [CLS] Disease: a disease, disorder, ... [SEP] ... the [E] aspirin [/E] dose ... [SEP]

The first segment names the candidate's type and its short definition (``labels.py``); the second
is the candidate's context (its sentence, at most ``context_words`` words on each side) with the
candidate between the marker tokens ``[E]`` and ``[/E]``. The model reads the representation of the
``[E]`` token and gives one logit; the probability is its sigmoid.

    sel = Selector("selector.int8.onnx", "tokenizer.json")
    probs = sel.score(text, candidates)      # one probability per candidate, same order
    sel.bench(256)                           # {"ms_per_candidate": ..., ...}

The ONNX file carries its input format in its metadata (``biotag_selector``: marker ids,
vocabulary size, sha256 of the tokenizer it was exported with, ``max_len``, ``context_words``);
a tokenizer that does not belong to the model, or an altered file, is a :class:`ModelError`.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Iterable, Sequence

from .errors import ModelError
from .labels import CANONICAL_TYPES
from .words import segment_words

FORMAT_VERSION = 1
MARK_OPEN = "[E]"
MARK_CLOSE = "[/E]"
MARKERS = (MARK_OPEN, MARK_CLOSE)
META_KEY = "biotag_selector"
DEFAULT_MAX_LEN = 192
DEFAULT_CONTEXT_WORDS = 32
# special-token strings that must never be read as special tokens when they occur in user text:
# each is replaced by a same-length look-alike, so offsets do not move
_SPECIAL_STRINGS = ("[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]", MARK_OPEN, MARK_CLOSE)
_SENT_END = re.compile(r"(?<=[.!?。！？；;])\s+|(?<=[。！？；])|\n")


# --- the input format (shared with training) ---------------------------------------------------
def type_prefix(typ: str) -> str:
    """First segment of the input: ``"{type}: {short definition}"``."""
    d = CANONICAL_TYPES.get(typ)
    return f"{typ}: {d}" if d else typ


def escape_specials(text: str) -> str:
    """Replace special-token strings in text by same-length look-alikes ``[SEP]`` -> ``(SEP)``."""
    if "[" not in text:
        return text
    for s in _SPECIAL_STRINGS:
        if s in text:
            text = text.replace(s, "(" + s[1:-1] + ")")
    return text


def context_span(text: str, start: int, end: int, max_words: int = DEFAULT_CONTEXT_WORDS,
                 scan: int = 1200) -> tuple[int, int]:
    """The context of the candidate ``text[start:end]``: its sentence (cut at sentence ends and
    line breaks outside the candidate), at most ``max_words`` words on each side, without
    surrounding whitespace. A pure function of its arguments."""
    lo, hi = max(0, start - scan), min(len(text), end + scan)
    a = lo
    for m in _SENT_END.finditer(text, lo, start):
        if m.end() <= start:
            a = m.end()
    b = hi
    m = _SENT_END.search(text, end, hi)
    if m is not None:
        b = m.start()
    left = segment_words(text[a:start], offset=a)
    if len(left) > max_words:
        a = left[-max_words].start
    right = segment_words(text[end:b], offset=end)
    if len(right) > max_words:
        b = right[max_words - 1].end
    while a < start and text[a].isspace():
        a += 1
    while b > end and text[b - 1].isspace():
        b -= 1
    return a, b


def mark(context: str, start: int, end: int) -> tuple[str, tuple[int, int]]:
    """``context`` with the candidate ``[start, end)`` between the markers; returns the marked text
    and the candidate's character span in it (``marked[ms:me] == context[start:end]``, special-token
    strings such as ``[SEP]`` inside it escaped)."""
    if not (0 <= start < end <= len(context)):
        raise ValueError(f"candidate span [{start}, {end}) outside a context of length {len(context)}")
    # escaped part by part: a special string cut by the candidate's boundary stays as it is (the
    # inserted markers separate its pieces), so the candidate's text changes only when it holds one
    left, mid, right = (escape_specials(x) for x in (context[:start], context[start:end], context[end:]))
    marked = left + MARK_OPEN + " " + mid + " " + MARK_CLOSE + right
    ms = start + len(MARK_OPEN) + 1
    return marked, (ms, ms + end - start)


def build_input(text: str, start: int, end: int, typ: str,
                context_words: int = DEFAULT_CONTEXT_WORDS) -> tuple[str, str, tuple[int, int]]:
    """(first segment, marked second segment, candidate char span in the second segment) for the
    candidate ``text[start:end]`` of type ``typ``; ``text`` may be a sentence or a whole document."""
    a, b = context_span(text, start, end, context_words)
    marked, span = mark(text[a:b], start - a, end - a)
    return type_prefix(typ), marked, span


def char_span_to_tokens(offsets: Sequence[tuple[int, int]], sequence_ids: Sequence[int | None],
                        start: int, end: int, sequence: int = 1) -> tuple[int, int] | None:
    """Token positions ``[i, j)`` of ``sequence`` whose characters lie in ``[start, end)`` (offsets as
    the tokenizer gives them, relative to that sequence's text); None when no token does."""
    idx = [k for k, (o, s) in enumerate(zip(offsets, sequence_ids))
           if s == sequence and o[1] > o[0] and o[0] >= start and o[1] <= end]
    if not idx:
        return None
    return idx[0], idx[-1] + 1


def sigmoid(x):
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))))


# score fusion -> what a candidate's threshold is compared with (see ``fuse``; the rule text of
# selector.json and the selector's model card read these descriptions)
FUSIONS = {
    "selector": "its selector probability",
    "geometric": "the geometric mean of its selector probability and the LLM's confidence "
                 "(the selector's probability alone for dictionary matches)",
}


def fuse(selector_score: float, llm_score: float | None, fusion: str = "selector") -> float:
    """The score a candidate's threshold is compared with. ``selector``: the selector's probability
    alone. ``geometric``: the geometric mean of the selector's probability and the tagging LLM's own
    confidence in the span (chosen on dev: held-out F1 gain +2.10 vs +1.07 for the selector alone,
    2-fold CV over 9 dev sets; see the selector's model card). A candidate without an LLM
    confidence (a dictionary match) gets the selector's probability alone."""
    if fusion == "selector" or llm_score is None:
        return float(selector_score)
    if fusion == "geometric":
        return math.sqrt(max(0.0, float(selector_score)) * max(0.0, float(llm_score)))
    raise ModelError(f"unknown score fusion {fusion!r} (expected one of {', '.join(FUSIONS)})")


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --- the runtime model ---------------------------------------------------------------------------
class Selector:
    """Scores candidate entities with an ONNX span classifier.

    ``config`` is the bundle manifest's ``selector`` entry (thresholds etc.; optional keys
    ``sha256: {"model": .., "tokenizer": ..}`` are checked). ``device``: "cpu", "gpu" (CUDA, an
    error when onnxruntime has none) or "auto" (CUDA when available)."""

    def __init__(self, onnx_path: str | os.PathLike, tokenizer_path: str | os.PathLike,
                 config: dict | None = None, device: str = "auto", threads: int | None = None,
                 batch_size: int = 32):
        self.onnx_path, self.tokenizer_path = Path(onnx_path), Path(tokenizer_path)
        self.config = dict(config or {})
        self.device, self.threads, self.batch_size = device, threads, max(1, int(batch_size))
        for p, what in ((self.onnx_path, "selector model"), (self.tokenizer_path, "selector tokenizer")):
            if not p.is_file():
                raise ModelError(f"{p}: missing {what} file")
        want = self.config.get("sha256") or {}
        for key, p in (("model", self.onnx_path), ("tokenizer", self.tokenizer_path)):
            if want.get(key) and file_sha256(p) != want[key]:
                raise ModelError(f"{p}: sha256 does not match the manifest: altered file")
        self._load_tokenizer()
        self._load_session()
        self._check_pair()

    # -- loading --
    def _load_tokenizer(self) -> None:
        from tokenizers import Tokenizer

        try:
            tok = Tokenizer.from_file(str(self.tokenizer_path))
        except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
            raise ModelError(f"{self.tokenizer_path}: unreadable tokenizer ({exc})") from None
        self.open_id, self.close_id = tok.token_to_id(MARK_OPEN), tok.token_to_id(MARK_CLOSE)
        self.pad_id = tok.token_to_id("[PAD]") or 0
        if self.open_id is None or self.close_id is None:
            raise ModelError(f"{self.tokenizer_path}: tokenizer has no {MARK_OPEN}/{MARK_CLOSE} marker "
                             f"tokens (not a selector tokenizer)")
        tok.no_padding()
        self.tokenizer = tok

    def _providers(self) -> list[str]:
        import onnxruntime as ort

        avail = ort.get_available_providers()
        if self.device not in ("cpu", "gpu", "auto"):
            raise ModelError(f"unknown selector device {self.device!r} (cpu, gpu or auto)")
        if self.device == "gpu" and "CUDAExecutionProvider" not in avail:
            raise ModelError("selector on --device gpu: this onnxruntime has no CUDA provider "
                             "(install onnxruntime-gpu, or use the CPU)")
        if self.device in ("gpu", "auto") and "CUDAExecutionProvider" in avail:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]

    def _load_session(self) -> None:
        import onnxruntime as ort

        try:
            ort.disable_telemetry_events()   # besides ORT_DISABLE_TELEMETRY (biotag.runtime)
        except AttributeError:
            pass
        so = ort.SessionOptions()
        so.log_severity_level = 3
        # no busy-waiting after a run: the selector shares the CPU with llama.cpp
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if self.threads:
            so.intra_op_num_threads = int(self.threads)
            so.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(self.onnx_path), so, providers=self._providers())
        except ModelError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ModelError(f"{self.onnx_path}: not a loadable ONNX model ({str(exc).splitlines()[0][:200]})") from None
        raw = self.session.get_modelmeta().custom_metadata_map.get(META_KEY)
        if not raw:
            raise ModelError(f"{self.onnx_path}: not a biotag selector model (no {META_KEY} metadata)")
        try:
            self.meta = json.loads(raw)
        except json.JSONDecodeError:
            raise ModelError(f"{self.onnx_path}: damaged {META_KEY} metadata") from None
        if self.meta.get("format_version") != FORMAT_VERSION:
            raise ModelError(f"{self.onnx_path}: selector format {self.meta.get('format_version')!r}, "
                             f"this biotag reads {FORMAT_VERSION}")
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.max_len = int(self.meta.get("max_len", DEFAULT_MAX_LEN))
        self.context_words = int(self.meta.get("context_words", DEFAULT_CONTEXT_WORDS))
        self.tokenizer.enable_truncation(self.max_len, strategy="only_second")

    def _check_pair(self) -> None:
        m = self.meta
        if (m.get("open_id"), m.get("close_id")) != (self.open_id, self.close_id) or \
                m.get("vocab_size") != self.tokenizer.get_vocab_size(with_added_tokens=True):
            raise ModelError(f"{self.tokenizer_path}: tokenizer does not belong to {self.onnx_path} "
                             f"(marker ids or vocabulary size differ)")
        if m.get("tokenizer_sha256") and file_sha256(self.tokenizer_path) != m["tokenizer_sha256"]:
            raise ModelError(f"{self.tokenizer_path}: tokenizer differs from the one {self.onnx_path} "
                             f"was exported with (altered file?)")

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    # -- picklable spec for worker processes --
    def spec(self) -> dict:
        return {"onnx": str(self.onnx_path), "tokenizer": str(self.tokenizer_path), "config": self.config,
                "device": self.device, "threads": self.threads, "batch_size": self.batch_size}

    @classmethod
    def from_spec(cls, spec: dict) -> "Selector":
        return cls(spec["onnx"], spec["tokenizer"], spec.get("config"), spec.get("device", "auto"),
                   spec.get("threads"), spec.get("batch_size", 32))

    # -- scoring --
    def inputs_for(self, text: str, candidates: Iterable) -> list[tuple[str, str]]:
        """The (first, second) segment pairs the model reads for each candidate."""
        out = []
        for c in candidates:
            prefix, marked, _ = build_input(text, c.start, c.end, c.type, self.context_words)
            out.append((prefix, marked))
        return out

    def logits_of_pairs(self, pairs: Sequence[tuple[str, str]]):
        import numpy as np

        if not pairs:
            return np.zeros(0, dtype=np.float32)
        encs = self.tokenizer.encode_batch(list(pairs))
        order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
        out = np.zeros(len(encs), dtype=np.float32)
        for k in range(0, len(order), self.batch_size):
            idx = order[k:k + self.batch_size]
            n = max(len(encs[i].ids) for i in idx)
            ids = np.full((len(idx), n), self.pad_id, dtype=np.int64)
            att = np.zeros((len(idx), n), dtype=np.int64)
            typ = np.zeros((len(idx), n), dtype=np.int64)
            for r, i in enumerate(idx):
                e = encs[i]
                L = len(e.ids)
                ids[r, :L], att[r, :L], typ[r, :L] = e.ids, e.attention_mask, e.type_ids
            feed = {"input_ids": ids, "attention_mask": att, "token_type_ids": typ}
            res = self.session.run(None, {k_: v for k_, v in feed.items() if k_ in self.input_names})[0]
            out[idx] = np.asarray(res, dtype=np.float32).reshape(len(idx))
        return out

    def score(self, text: str, candidates: Sequence) -> list[float]:
        """Probability that each candidate (objects with start, end, type; offsets into ``text``)
        is a correct entity, in the candidates' order."""
        if not candidates:
            return []
        return [float(p) for p in sigmoid(self.logits_of_pairs(self.inputs_for(text, candidates)))]

    def bench(self, n: int = 256, lang: str = "en", repeat: int = 2) -> dict:
        """Time scoring of ``n`` candidates (word spans of a fixed text); best of ``repeat``."""
        from .document import Entity

        text = BENCH_TEXT[lang]
        words = segment_words(text)
        types = ["Disease", "Chemical"] if lang == "en" else ["Disease", "Symptom"]
        cands = []
        k = 0
        while len(cands) < n:
            i = k % len(words)
            j = min(len(words), i + 1 + (k // len(words)) % 3)
            cands.append(Entity(words[i].start, words[j - 1].end, types[k % len(types)]))
            k += 1
        best = best_cpu = float("inf")
        for _ in range(max(1, repeat)):
            t, c = time.perf_counter(), time.process_time()
            self.score(text, cands)
            best = min(best, time.perf_counter() - t)
            best_cpu = min(best_cpu, time.process_time() - c)
        # cpu_ms: CPU time of this process (all its threads); on a busy machine wall time grows with
        # the other load, CPU time much less
        return {"candidates": n, "lang": lang, "seconds": round(best, 4),
                "ms_per_candidate": round(1000 * best / n, 3),
                "cpu_ms_per_candidate": round(1000 * best_cpu / n, 3), "batch_size": self.batch_size,
                "providers": self.providers, "threads": self.threads or "default",
                "model": self.onnx_path.name, "model_mib": round(self.onnx_path.stat().st_size / 2**20, 2)}


BENCH_TEXT = {
    "en": ("Aspirin-induced asthma was observed in 12 of 40 patients with chronic rhinosinusitis who "
           "received low-dose acetylsalicylic acid; two developed angioedema. In contrast, celecoxib "
           "did not provoke bronchospasm in BRCA1 mutation carriers treated with tamoxifen."),
    "zh": ("患者因反复腹痛伴发热三天入院，血常规示白细胞升高，腹部CT提示急性阑尾炎，"
           "给予头孢曲松抗感染治疗后行腹腔镜阑尾切除术，术后恢复良好。"),
}
