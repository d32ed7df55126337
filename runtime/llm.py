"""A thin layer over llama-cpp-python: safe model loading, tokenization, and a decoding backend.

Safe loading: llama.cpp's CPU "extra buffer types" (AMX weight repacking) crash at the first
decode of Q8_0/Q4_K_M models on CPUs with AMX (see the project notes). biotag turns them off in
the model parameters, which works with any build of llama-cpp-python.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import ModelError
from .gguf_header import GGUFHeader, check_gguf_file, gguf_data_end, read_gguf_header  # noqa: F401

_PATCH_LOCK = threading.Lock()


@contextlib.contextmanager
def _no_extra_bufts():
    import llama_cpp
    from llama_cpp import llama as llama_mod

    orig = llama_cpp.llama_cpp.llama_model_default_params

    def patched():
        p = orig()
        p.use_extra_bufts = False
        return p

    with _PATCH_LOCK:
        llama_mod.llama_cpp.llama_model_default_params = patched
        try:
            yield
        finally:
            llama_mod.llama_cpp.llama_model_default_params = orig


_LOG_CB = None
_LOG_LISTENER = None     # a function of each native log line, while one is set (see native_log_listener)


def _quiet_native_log() -> None:
    """llama.cpp's and ggml's own log lines (loader, KV cache, quantizer) never reach the user's
    terminal; set BIOTAG_LLAMA_LOG=1 to see them. Failures still surface as ModelError messages.
    The callback object is kept for the life of the process (llama.cpp holds its address)."""
    global _LOG_CB
    if _LOG_CB is not None or os.environ.get("BIOTAG_LLAMA_LOG"):
        return
    import ctypes

    import llama_cpp

    @llama_cpp.llama_log_callback
    def _drop(level, text, user_data):
        listener = _LOG_LISTENER
        if listener is not None and text:
            try:
                listener(text.decode("utf-8", "replace"))
            except BaseException:   # noqa: BLE001 - nothing may escape into C; Ctrl-C is kept
                note_interrupt()
        return None

    _LOG_CB = _drop
    llama_cpp.llama_log_set(_LOG_CB, ctypes.c_void_p(0))


@contextlib.contextmanager
def native_log_listener(fn):
    """Native log lines go to ``fn(line)`` (and nowhere else) inside the block; with
    BIOTAG_LLAMA_LOG=1 they go to stderr as llama.cpp writes them and ``fn`` sees none."""
    global _LOG_LISTENER
    _quiet_native_log()
    catch_native_interrupts()
    prev, _LOG_LISTENER = _LOG_LISTENER, fn
    try:
        yield
    finally:
        _LOG_LISTENER = prev


# -- Ctrl-C inside native code ------------------------------------------------------------------
# A KeyboardInterrupt raised while Python runs a ctypes callback (llama.cpp's eval or log callback)
# cannot unwind through C: ctypes prints it as "Exception ignored" and the C code goes on. biotag's
# callbacks catch it and note it here; the Python code after the native call raises it again.
_INTERRUPTED = False
_PREV_HOOK = None


def note_interrupt() -> None:
    global _INTERRUPTED
    _INTERRUPTED = True


def raise_if_interrupted() -> None:
    """Raise the KeyboardInterrupt that arrived inside a native call, once."""
    global _INTERRUPTED
    if _INTERRUPTED:
        _INTERRUPTED = False
        raise KeyboardInterrupt


def _unraisable(hook_args) -> None:
    if isinstance(hook_args.exc_value, KeyboardInterrupt):
        note_interrupt()
        return
    (_PREV_HOOK or sys.__unraisablehook__)(hook_args)


def catch_native_interrupts() -> None:
    """Install (once) an unraisable hook that turns a Ctrl-C swallowed by ctypes into a note."""
    global _PREV_HOOK
    if sys.unraisablehook is not _unraisable:
        _PREV_HOOK = sys.unraisablehook
        sys.unraisablehook = _unraisable


def default_threads() -> int:
    """llama.cpp threads when none are asked for: the CPUs this process may use that other
    programs are not keeping busy right now, at most 4. llama.cpp's threads spin while they wait
    for each other, so one thread more than the free cores costs far more than its share: on a
    2-core machine with one CPU-bound program running, 2 threads took 2.9x the idle time, 1 thread
    1.4x (``biotag bench --contention``)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return threads_for(n, busy_cpus())


def threads_for(n_cpus: int, busy: float) -> int:
    """Threads for ``n_cpus`` usable CPUs of which ``busy`` are in use by other programs."""
    return max(1, min(4, n_cpus - int(busy + 0.5)))


def busy_cpus(interval: float = 0.2) -> float:
    """How many CPUs other programs keep busy, from /proc/stat over ``interval`` seconds (this
    process is idle meanwhile); 0 where /proc/stat cannot be read."""
    import time

    def sample():
        with open("/proc/stat", encoding="ascii") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)          # idle + iowait
        return sum(v[:8]), idle, os.cpu_count() or 1

    try:
        t0, i0, n = sample()
        time.sleep(interval)
        t1, i1, _ = sample()
    except (OSError, ValueError, IndexError):
        return 0.0
    if t1 <= t0:
        return 0.0
    return n * (1 - (i1 - i0) / (t1 - t0))


def load_llama(path: str | os.PathLike, n_ctx: int = 2048, n_threads: int | None = None,
               n_gpu_layers: int = 0, vocab_only: bool = False, n_batch: int = 512,
               lora_path: str | os.PathLike | None = None, head: str = "auto"):
    """Load a GGUF with llama-cpp-python, AMX-safe, quiet, after checking the file.
    ``lora_path``: a llama.cpp LoRA GGUF (biotag.export.merge.write_lora_gguf) applied at scale 1.
    ``head``: "auto" computes the few logits the decoder needs on our side from the final hidden
    states on the CPU (runtime/head.py; checked against llama.cpp's logits at load), "llama"
    always uses llama.cpp's full-vocabulary logits (the GPU path)."""
    import llama_cpp

    p = check_gguf_file(path)
    _quiet_native_log()
    catch_native_interrupts()
    if n_threads is not None and (isinstance(n_threads, bool) or int(n_threads) < 1):
        raise ModelError(f"threads must be 1 or more, got {n_threads!r}")
    threads = int(n_threads) if n_threads else default_threads()
    # both: llama-cpp-python sets the batch (prompt) threads to every CPU when not given
    kwargs = dict(n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                  n_gpu_layers=n_gpu_layers, vocab_only=vocab_only, verbose=False, n_batch=n_batch,
                  n_ubatch=n_batch, logits_all=False)
    if lora_path is not None:
        kwargs["lora_path"] = str(check_gguf_file(lora_path))
    with _no_extra_bufts():
        try:
            llm = llama_cpp.Llama(str(p), **kwargs)
        except Exception as exc:
            raise_if_interrupted()
            raise ModelError(f"{p}: llama.cpp could not load the model ({exc})") from None
    raise_if_interrupted()
    llm._biotag_head = None
    if head not in ("auto", "llama"):
        raise ModelError(f"unknown head mode {head!r} (auto or llama)")
    if head == "auto" and not vocab_only and n_gpu_layers == 0 and lora_path is None:
        _install_head(llm, p)
    return llm


def _install_head(llm, path: Path) -> None:
    """Give ``llm`` a context whose scheduler stops after the final norm when asked (HiddenCapture),
    and keep the head only if its logits agree with llama.cpp's own on a probe sequence."""
    from llama_cpp._internals import LlamaContext

    from .head import HiddenCapture, OutputHead

    try:
        head = OutputHead(path)
        cap = HiddenCapture(head.n_embd)
    except (ModelError, OSError, ValueError, KeyError):
        return
    params = llm.context_params
    params.cb_eval = cap.callback
    params.cb_eval_user_data = None
    try:
        ctx = LlamaContext(model=llm._model, params=params, verbose=False)
    except ValueError:
        return
    llm._ctx.close()
    llm._ctx = ctx
    llm._biotag_capture = cap  # the callback must outlive the context
    # probe: the same queries through llama.cpp's logits and through the head
    llm._biotag_head = head
    probe = llm.tokenize(b"Aspirin-induced asthma in 12 patients.", add_bos=True)
    queries = {k: [int(probe[k + 1]), 0, 1, 2, 106, 107] for k in range(len(probe) - 1)}
    ours = None
    try:
        full = LlamaBackend(llm, use_head=False)
        full.reset()
        ref = np.stack(list(full.append(probe, queries).values()))
        ours = LlamaBackend(llm)
        ours.clear()
        got = np.stack(list(ours.append(probe, queries).values()))
        agree = np.abs(ref - got).max() <= 1e-2 * max(1.0, float(np.abs(ref).max()))
    except ModelError:
        agree = False
    finally:
        if ours is not None:
            ours.clear()
    if not agree:
        llm._biotag_head = None


def llama_tokenize_fn(llm):
    """tokenize(text, special) -> ids (no BOS), as TokenTable expects."""

    def tok(text: str, special: bool) -> list[int]:
        if not text:
            return []
        return list(llm.tokenize(text.encode("utf-8"), add_bos=False, special=special))

    return tok


class LlamaBackend:
    """Decoding backend over one llama.cpp context (not thread-safe: one per process).

    Appends tokens with llama_decode, asks for logits only where the decoder needs them, keeps
    the KV cache of the longest common prefix with the previous sequence (prompt reuse), and
    rolls back rejected draft tokens with llama_memory_seq_rm."""

    def __init__(self, llm, use_head: bool = True):
        import llama_cpp

        self.ll = llama_cpp
        self.llm = llm
        self.ctx = llm._ctx.ctx
        # runtime/head.py (the few logits the decoder asks for, on our side), or None: llama.cpp's logits
        self.head = getattr(llm, "_biotag_head", None) if use_head else None
        self.capture = getattr(llm, "_biotag_capture", None)
        self.n_vocab = llm.n_vocab()
        self.n_ctx = llm.n_ctx()
        self.n_batch = llm.n_batch
        self.batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self.mem = llama_cpp.llama_get_memory(self.ctx)
        self.seq: list[int] = []      # tokens in the KV cache
        self.pending: list[int] = []  # sequence the decoder has appended since reset
        self._reused = 0
        # the context may hold another backend's tokens: start from an empty KV cache
        llama_cpp.llama_memory_seq_rm(self.mem, 0, 0, -1)

    def __del__(self):
        try:
            self.ll.llama_batch_free(self.batch)
        except Exception:
            pass

    def reset(self) -> None:
        self.pending = []
        self._reused = -1

    def clear(self) -> None:
        """Forget the sequence and the whole KV cache (no prefix reuse on the next pass)."""
        self.ll.llama_memory_seq_rm(self.mem, 0, 0, -1)
        self.seq = []
        self.reset()

    def _truncate_cache(self, n: int) -> None:
        if n < len(self.seq):
            self.ll.llama_memory_seq_rm(self.mem, 0, n, -1)
            self.seq = self.seq[:n]

    def append(self, tokens: Sequence[int], queries: dict[int, Sequence[int]]) -> dict[int, np.ndarray]:
        tokens = list(tokens)
        start = len(self.pending)
        self.pending.extend(tokens)
        if len(self.pending) > self.n_ctx:
            raise ModelError(f"sequence of {len(self.pending)} tokens exceeds the context ({self.n_ctx})")
        # reuse the cached prefix the first time after a reset
        if self._reused < 0:
            common = 0
            for a, b in zip(self.seq, self.pending):
                if a != b:
                    break
                common += 1
            # the last token must be decoded again to get its logits
            common = min([common, len(self.pending) - 1] + [start + k for k in queries])
            self._truncate_cache(common)
            self._reused = common
        else:
            self._truncate_cache(start)
        first_new = len(self.seq)
        todo = self.pending[first_new:]
        want = {start + k: np.asarray(list(ids), dtype=np.int64) for k, ids in queries.items()}
        res: dict[int, np.ndarray] = {}
        pos = first_new
        while todo:
            chunk, todo = todo[: self.n_batch], todo[self.n_batch:]
            b = self.batch
            b.n_tokens = len(chunk)
            for k, t in enumerate(chunk):
                b.token[k] = t
                b.pos[k] = pos + k
                b.n_seq_id[k] = 1
                b.seq_id[k][0] = 0
                b.logits[k] = (pos + k) in want
            outs = [k for k in range(len(chunk)) if (pos + k) in want]
            hidden = self.head is not None and bool(outs)
            if hidden:
                self.capture.armed, self.capture.hidden = True, None
            try:
                rc = self.ll.llama_decode(self.ctx, b)
            finally:
                if self.capture is not None:
                    self.capture.armed = False
            if self.capture is not None and self.capture.interrupted:
                self.capture.interrupted = False
                note_interrupt()
            if _INTERRUPTED:   # Ctrl-C during the decode: the batch may be cut short
                self.ll.llama_memory_seq_rm(self.mem, 0, len(self.seq), -1)
                raise_if_interrupted()
            if rc != 0:
                raise ModelError(f"llama_decode failed ({rc})")
            if hidden:
                h = self.capture.hidden
                if h is None or h.shape[0] != len(outs):
                    raise ModelError("llama.cpp did not report the final hidden states")
                for k, row in zip(outs, self.head.logits(h, [want[pos + k] for k in outs])):
                    res[pos + k - start] = row
            else:
                for k in outs:
                    ptr = self.ll.llama_get_logits_ith(self.ctx, k)
                    row = np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))
                    res[pos + k - start] = row[want[pos + k]].astype(np.float32)
            self.seq.extend(chunk)
            pos += len(chunk)
        return res

    def rollback(self, n: int) -> None:
        if n <= 0:
            return
        self.pending = self.pending[:-n]
        self._truncate_cache(len(self.pending))
