"""`biotag bench` on the tiny model: every mode runs, the JSON has the ratio keys, and the
speculative decoder reproduces token-by-token decoding (with our head and with llama.cpp's logits)."""
import json
import subprocess
import sys

from biotag.runtime.bench import run_bench
from biotag.runtime.tagger import Tagger


def test_bench_modes_agree(tiny_bundle):
    tg = Tagger.load(tiny_bundle, device="cpu", threads=1)
    res = run_bench(tg.llm, tg.table, tg.fmt)
    assert res["head"].startswith("biotag")
    assert res["identical_outputs"] == {"b_constrained": True, "b_constrained_full_logits": True}
    for k in ("a_unconstrained", "b_constrained", "b_constrained_full_logits", "c_speculative", "d_limit"):
        assert res[k]["seconds"] > 0 and res[k]["tokens"] > 0
    assert res["c_speculative"]["calls"] < res["b_constrained"]["calls"]
    assert res["ratio_speculative_vs_constrained"] > 0 and res["ratio_speculative_vs_limit"] > 0


def test_bench_cli_json(tiny_bundle):
    p = subprocess.run([sys.executable, "-m", "biotag.runtime.cli", "bench", "--bundle", str(tiny_bundle),
                        "--threads", "1", "--json"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    res = json.loads(p.stdout)
    assert {"ratio_speculative_vs_constrained", "ratio_speculative_vs_limit", "note_500_words",
            "peak_rss_mb"} <= res.keys()
    assert res["note_500_words"]["segments"] > 10


def test_bench_contention_and_latency_run(tiny_bundle):
    """The code of the contention and latency measurements (their figures need an idle machine)."""
    import os

    from biotag.runtime.bench import bench_contention, bench_latency

    tg = Tagger.load(tiny_bundle, device="cpu", threads=1)
    c = bench_contention(tg, n_words=20)
    assert c["idle"]["wall_s"] > 0 and c["contended"]["wall_s"] > 0 and c["slowdown"] > 0
    assert c["idle"]["entities"] == c["contended"]["entities"]     # the same work both times
    assert c["competitor_core"] in os.sched_getaffinity(0)
    lat = bench_latency(tg, n_words=20)
    assert lat["ticks"] > 0 and lat["late_ms_max"] >= lat["late_ms_median"] >= 0
