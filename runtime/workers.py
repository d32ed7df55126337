"""Parallel tagging: one process per worker, each with its own llama.cpp model (a Llama object is
not thread-safe). Results come back in input order; at most 2 x workers documents are in flight.
Ctrl-C is the parent's: the workers ignore SIGINT and the parent stops them."""
from __future__ import annotations

import multiprocessing
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from typing import Iterable, Iterator

_TAGGER = None


def _init(tagger_class, spec: dict) -> None:
    """A worker's tagger: ``tagger_class`` (pickled by name: no import of the tagger module here)
    built from the parent's spec."""
    global _TAGGER
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _TAGGER = tagger_class(**spec)


def _tag(args):
    doc, opts = args
    return _TAGGER.tag_document(doc, opts)


def parallel_tag(tagger, docs: Iterable, workers: int, opts=None) -> Iterator:
    ctx = multiprocessing.get_context("spawn")
    spec = dict(tagger.spec)
    if spec.get("threads") is None:
        spec["threads"] = 1
    ex = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init, initargs=(type(tagger), spec))
    try:
        pending: deque = deque()
        for d in docs:
            pending.append(ex.submit(_tag, (d, opts)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    except BaseException:   # Ctrl-C, an error, or the consumer stopped: end the workers now
        for p in list((getattr(ex, "_processes", None) or {}).values()):
            p.terminate()
        ex.shutdown(wait=False, cancel_futures=True)
        raise
    ex.shutdown(wait=True)
