"""`biotag bench`: decoding speed on a fixed set of synthetic sentences (a benchmark, not a test).

(a) unconstrained token-by-token generation of the same outputs (one llama_decode per token, full
    vocabulary argmax), (b) copy-constrained token by token, (c) copy-speculative (the product's
    decoder), (d) the limit: one batched prompt-processing pass over the same number of tokens.
(b) and (c) score markers with the same head (runtime/head.py on the CPU); (b') is (b) on
llama.cpp's full-vocabulary logits, the usual way to constrain a llama.cpp model.
Also: a 500-word synthetic clinical note tagged end to end (total and first-segment latency).
"""
from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np

from ..codec import FORMAT_S
from ..decoding import ConstrainedDecoder, tag_words
from ..prompting import Task
from ..words import segment_words

SENTENCES_EN = [
    "The patient was admitted with acute myocardial infarction and treated with aspirin and clopidogrel.",
    "Cisplatin-induced nephrotoxicity was observed in 12 of 40 rats.",
    "Mutations in BRCA1 and BRCA2 increase the risk of breast and ovarian cancer.",
    "Expression of the IL-2 receptor alpha chain was induced in Jurkat T cells by PMA.",
    "Mycobacterium tuberculosis infection in mice was reduced by rifampicin.",
    "She developed a maculopapular rash and fever after starting amoxicillin.",
    "Levels of TNF-alpha mRNA were elevated in peripheral blood monocytes of patients with sepsis.",
    "Haloperidol can cause tardive dyskinesia and neuroleptic malignant syndrome.",
    "The NF-kappa B binding site in the HIV-1 long terminal repeat is required for activation.",
    "Arabidopsis thaliana and Saccharomyces cerevisiae were used as model organisms.",
    "Metformin lowers blood glucose in type 2 diabetes without causing hypoglycemia.",
    "Chronic hepatitis B was treated with entecavir for 48 weeks.",
]
SENTENCES_ZH = [
    "患者因右下腹疼痛三天入院，诊断为急性阑尾炎。",
    "给予阿莫西林口服，每日三次，体温逐渐恢复正常。",
    "胸部CT示双肺多发结节，考虑肺结核可能。",
    "患儿出现咳嗽、发热及呼吸困难，血常规示白细胞升高。",
]

NOTE_PARTS = [
    "HPI: 64-year-old man with a history of type 2 diabetes mellitus, hypertension and chronic kidney "
    "disease presents with three days of productive cough, fever and shortness of breath.",
    "He reports pleuritic chest pain on the right side and decreased appetite.",
    "Medications: metformin 500 mg b.i.d., lisinopril 10 mg daily, atorvastatin 40 mg nightly.",
    "Exam: temperature 38.6 C, crackles over the right lower lobe, no peripheral edema.",
    "Labs: leukocytosis with neutrophilia, elevated C-reactive protein and procalcitonin; creatinine "
    "stable at baseline.",
    "Chest X-ray shows a right lower lobe consolidation consistent with community-acquired pneumonia.",
    "Sputum culture grew Streptococcus pneumoniae sensitive to ceftriaxone.",
    "Assessment: community-acquired pneumonia in a patient with diabetes and CKD stage 3.",
    "Plan: start ceftriaxone 1 g IV daily and azithromycin 500 mg daily, hold metformin, monitor renal "
    "function and blood glucose, incentive spirometry.",
]


def synthetic_note(n_words: int = 500) -> str:
    out, k = [], 0
    while sum(len(p.split()) for p in out) < n_words:
        out.append(NOTE_PARTS[k % len(NOTE_PARTS)])
        k += 1
    return "\n".join(out)


class Recorder:
    """Wraps a backend and records the full token sequence of the last pass."""

    def __init__(self, backend):
        self.b = backend
        self.seq: list[int] = []

    def reset(self):
        self.b.reset()
        self.seq = []

    def append(self, tokens, queries):
        self.seq.extend(tokens)
        return self.b.append(tokens, queries)

    def rollback(self, n):
        if n:
            del self.seq[-n:]
        self.b.rollback(n)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_bench(llm, table, fmt: str = FORMAT_S, repeat: int = 1, draft_words: int | None = None) -> dict:
    from ..llm import LlamaBackend

    items = [(s, Task.for_corpus("bc5cdr", fmt)) for s in SENTENCES_EN] + \
            [(s, Task.for_corpus("cmeee", fmt)) for s in SENTENCES_ZH]
    be = LlamaBackend(llm)
    full = LlamaBackend(llm, use_head=False)   # llama.cpp's full-vocabulary logits
    res = {"head": "biotag (final hidden states x the rows needed)" if be.head is not None
           else "llama.cpp logits"}
    # (c) copy-speculative, recording the sequences for (a) and (d); (b) token by token with the
    # same head, and (b') token by token on llama.cpp's full logits (the usual way to constrain)
    seqs = []
    outputs: dict[str, list] = {}
    modes = [("c_speculative", True, False, be), ("b_constrained", False, True, be)]
    if be.head is not None:
        modes.append(("b_constrained_full_logits", False, True, full))
    for name, spec, one, backend in modes:
        rec = Recorder(backend)
        dec = ConstrainedDecoder(rec, table, speculative=spec, one_token_per_call=one,
                                 draft_words=draft_words if spec else None)
        t0 = time.perf_counter()
        n_tok = 0
        for _ in range(repeat):
            for s, task in items:
                words = [w.text for w in segment_words(s)]
                for types, prefix in task.passes():
                    backend.clear()  # no prefix reuse between sentences: measure the full cost
                    prompt = table.prompt_ids(task, words, types, prefix)
                    spans = dec.decode(prompt, words, list(types), fmt, types[0] if fmt != FORMAT_S else None)
                    outputs.setdefault(name, []).append(spans)
                    n_tok += len(rec.seq)
                    if name == "c_speculative":
                        seqs.append((len(prompt), list(rec.seq)))
        dt = time.perf_counter() - t0
        res[name] = {"seconds": dt, "sentences_per_s": len(items) * repeat / dt, "tokens": n_tok,
                     "tokens_per_s": n_tok / dt, "calls": dec.stats.calls}
    # (a) unconstrained and (d) the limit on llama.cpp's own logits (full vocabulary / last token only)
    t0 = time.perf_counter()
    calls = n_tok = 0
    for _ in range(repeat):
        for n_prompt, seq in seqs:
            full.clear()
            full.append(seq[:n_prompt], {n_prompt - 1: range(full.n_vocab)})
            calls += 1
            for t in seq[n_prompt:]:
                row = full.append([t], {0: range(full.n_vocab)})[0]
                int(np.argmax(row))
                calls += 1
            n_tok += len(seq)
    dt = time.perf_counter() - t0
    res["a_unconstrained"] = {"seconds": dt, "sentences_per_s": len(items) * repeat / dt,
                              "tokens": n_tok, "tokens_per_s": n_tok / dt, "calls": calls}
    # (d) limit: each full sequence in one batched pass (logits only for the last position)
    t0 = time.perf_counter()
    n_tok = 0
    for _ in range(repeat):
        for _, seq in seqs:
            full.clear()
            full.append(seq, {len(seq) - 1: [0]})
            n_tok += len(seq)
    dt = time.perf_counter() - t0
    res["d_limit"] = {"seconds": dt, "sentences_per_s": len(items) * repeat / dt, "tokens": n_tok,
                      "tokens_per_s": n_tok / dt, "calls": len(seqs) * repeat}
    res["ratio_speculative_vs_constrained"] = res["c_speculative"]["sentences_per_s"] / res["b_constrained"]["sentences_per_s"]
    res["ratio_speculative_vs_limit"] = res["c_speculative"]["sentences_per_s"] / res["d_limit"]["sentences_per_s"]
    # the speculative decoder must reproduce token-by-token decoding exactly
    res["identical_outputs"] = {k: outputs[k] == outputs["c_speculative"] for k in outputs if k != "c_speculative"}
    if "b_constrained_full_logits" in res:
        res["ratio_speculative_vs_constrained_full_logits"] = (
            res["c_speculative"]["sentences_per_s"] / res["b_constrained_full_logits"]["sentences_per_s"])
    res["ratio_speculative_vs_unconstrained"] = res["c_speculative"]["sentences_per_s"] / res["a_unconstrained"]["sentences_per_s"]
    res["sentences"] = len(items)
    return res


def bench_note(tagger, n_words: int = 500) -> dict:
    from ..llm import LlamaBackend

    note = synthetic_note(n_words)
    tagger.decoder.backend = LlamaBackend(tagger.llm)  # the context was used by run_bench
    t0 = time.perf_counter()
    first = None
    n_ent = n_seg = 0
    for seg, ents in tagger.iter_segments(note):
        if first is None:
            first = time.perf_counter() - t0
        n_seg += 1
        n_ent += len(ents)
    total = time.perf_counter() - t0
    return {"words": len(note.split()), "segments": n_seg, "entities": n_ent,
            "total_s": total, "first_segment_s": first}


BUSY_LOOP = "import time\nwhile True:\n    pass\n"   # a CPU-bound competitor (a browser, a scan, a second job)


def _tag_timed(tagger, text: str) -> dict:
    t0, c0 = time.perf_counter(), time.process_time()
    doc = tagger.tag(text)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "cpu_per_wall": round(cpu / wall, 2),
            "entities": len(doc.entities)}


def bench_contention(tagger, n_words: int = 150, core: int | None = None) -> dict:
    """Tagging time on an otherwise idle machine vs with one competing CPU-bound process pinned to
    one core (``core``: the last CPU this process may use). ``slowdown`` is the ratio of the wall
    times; threads that spin while they wait show as ``cpu_per_wall`` well above the threads that
    have work. Run it on an otherwise idle machine: other load makes both numbers meaningless."""
    import os
    import subprocess

    from ..llm import LlamaBackend

    note = synthetic_note(n_words)
    tagger.decoder.backend = LlamaBackend(tagger.llm)
    tagger.tag(SENTENCES_EN[0])                      # warm-up: pages mapped, caches filled
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    core = cpus[-1] if core is None else core
    idle = _tag_timed(tagger, note)
    proc = subprocess.Popen([sys.executable, "-c", BUSY_LOOP], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(proc.pid, {core})
        time.sleep(0.2)                              # the competitor is running
        busy = _tag_timed(tagger, note)
    finally:
        proc.kill()
        proc.wait()
    return {"words": len(note.split()), "cpus": len(cpus), "competitor_core": core,
            "threads": tagger.spec.get("threads"), "idle": idle, "contended": busy,
            "slowdown": round(busy["wall_s"] / idle["wall_s"], 2), "target_slowdown": 2.0}


def bench_latency(tagger, n_words: int = 150, period_ms: float = 10.0) -> dict:
    """How late a periodic timer fires in another thread while the tagger works (the GUI tags in a
    worker thread; its event loop needs the interpreter lock to answer): the lateness distribution
    of a ``period_ms`` timer during one tagging job. Target: max under 200 ms."""
    import threading

    from ..llm import LlamaBackend

    note = synthetic_note(n_words)
    tagger.decoder.backend = LlamaBackend(tagger.llm)
    late: list[float] = []
    stop = threading.Event()

    def ticker():
        period = period_ms / 1000
        while not stop.is_set():
            t = time.perf_counter()
            time.sleep(period)
            late.append(max(0.0, time.perf_counter() - t - period) * 1000)

    th = threading.Thread(target=ticker, daemon=True)
    th.start()
    t0 = time.perf_counter()
    try:
        tagger.tag(note)
    finally:
        stop.set()
        th.join()
    late.sort()
    pick = (lambda q: round(late[min(len(late) - 1, int(q * len(late)))], 1)) if late else (lambda q: None)
    return {"words": len(note.split()), "tagging_s": round(time.perf_counter() - t0, 2), "ticks": len(late),
            "period_ms": period_ms, "late_ms_median": pick(0.5), "late_ms_p99": pick(0.99),
            "late_ms_max": round(late[-1], 1) if late else None, "target_max_ms": 200}


def _run(args) -> int:
    from ..tagger import Tagger

    tagger = Tagger.load(args.bundle, device=args.device, threads=args.threads, one_pass=args.one_pass)
    if args.contention or args.latency:
        res = {"bundle": f"{tagger.name} {tagger.version}", "threads": args.threads}
        if args.contention:
            res["contention"] = bench_contention(tagger, args.words)
        if args.latency:
            res["latency"] = bench_latency(tagger, args.words)
        print(json.dumps(res, indent=1))
        return 0
    res = run_bench(tagger.llm, tagger.table, tagger.fmt, args.repeat, tagger.decoder.draft_words)
    res["draft_words"] = tagger.decoder.draft_words
    res["note_500_words"] = bench_note(tagger)
    res["peak_rss_mb"] = _peak_rss_mb()
    res["bundle"] = f"{tagger.name} {tagger.version}"
    res["threads"] = args.threads
    if args.json:
        print(json.dumps(res, indent=1))
        return 0
    print(f"bundle {res['bundle']}, {res['sentences']} sentences x {args.repeat}; marker scores from {res['head']}")
    print(f"{'mode':26} {'sent/s':>8} {'tok/s':>8} {'calls':>7} {'seconds':>8}")
    for k in ("a_unconstrained", "b_constrained_full_logits", "b_constrained", "c_speculative", "d_limit"):
        if k not in res:
            continue
        r = res[k]
        print(f"{k:26} {r['sentences_per_s']:8.2f} {r['tokens_per_s']:8.1f} {r['calls']:7d} {r['seconds']:8.2f}")
    print(f"c/b = {res['ratio_speculative_vs_constrained']:.2f}x   c/d = {res['ratio_speculative_vs_limit']:.2f}   "
          f"c/a = {res['ratio_speculative_vs_unconstrained']:.2f}x")
    if "ratio_speculative_vs_constrained_full_logits" in res:
        print(f"c/b' (token by token on llama.cpp's full logits) = "
              f"{res['ratio_speculative_vs_constrained_full_logits']:.2f}x")
    print("same spans as (c): " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in res["identical_outputs"].items()))
    n = res["note_500_words"]
    print(f"500-word note: {n['total_s']:.2f} s total, first segment {n['first_segment_s']:.2f} s, "
          f"{n['segments']} segments, {n['entities']} entities; peak RSS {res['peak_rss_mb']:.0f} MB")
    return 0


def add_cli(sub) -> None:
    p = sub.add_parser("bench", help="decoding speed benchmark (unconstrained / constrained / speculative / limit)")
    p.add_argument("--bundle")
    p.add_argument("--device", choices=["cpu", "gpu", "auto"], default="cpu")
    from .tag import _positive_int

    p.add_argument("--threads", type=_positive_int, help="CPU threads of llama.cpp (1 or more)")
    p.add_argument("--repeat", type=_positive_int, default=1)
    p.add_argument("--one-pass", action="store_true",
                   help="tag the note under the profile instructions (biotag tag --one-pass)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--contention", action="store_true",
                   help="tagging time idle vs with a CPU-bound process on one core (JSON; an idle machine)")
    p.add_argument("--latency", action="store_true",
                   help="lateness of a 10 ms timer in another thread while tagging (JSON)")
    p.add_argument("--words", type=int, default=150, help="length of the note for --contention/--latency")
    p.set_defaults(func=_run)
