"""A 10 MB document through `biotag tag` (tiny bundle): exact offsets, every dictionary hit, bounded memory.

The LLM passes are skipped by asking for a type none of the tiny bundle's tasks has (Gene) and
forcing a user dictionary of that type, so the test measures what a 10 MB text costs the rest of
the pipeline (reading, segmenting, matching, writing) in about a minute instead of hours.
"""
from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

LINES = ["The patient received 2.5 mg of warfarin for atrial fibrillation.",
         "患者出现胸痛，给予阿司匹林100mg。",
         "No acute distress 😀 noted\u200b today; warfarin held.",
         "HPI:\tcough\u202e and fever, b.i.d. dosing per Dr. Smith.",
         "- BRCA1 carrier; e.g. family history of breast cancer."]


def big_text(n_bytes: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    out, n = [], 0
    while n < n_bytes:
        s = rng.choice(LINES) + rng.choice(["\r\n", "\n", "\n\n"])
        out.append(s)
        n += len(s.encode("utf-8"))
    return "".join(out)


def test_ten_megabyte_note(tiny_bundle, tmp_path):
    text = big_text(10 * 2**20)
    src = tmp_path / "big.txt"
    src.write_bytes(text.encode("utf-8"))
    terms = tmp_path / "terms.tsv"
    terms.write_text("warfarin\tGene\n阿司匹林\tGene\nBRCA1\tGene\n", encoding="utf-8")
    out = tmp_path / "out"
    rss = tmp_path / "rss.txt"
    args = ["tag", str(src), "--bundle", str(tiny_bundle), "--types", "Gene", "--dictionary", str(terms),
            "--dictionary-mode", "force", "--out", str(out), "--format", "jsonl", "--quiet", "--threads", "1"]
    child = ("import resource, sys\nfrom biotag.runtime.cli import main\nrc = main(sys.argv[2:])\n"
             "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n"
             "sys.exit(rc)\n")
    proc = subprocess.run([sys.executable, "-c", child, str(rss), *args], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    peak_mb = int(rss.read_text()) / 1024
    [line] = (out / "big.jsonl").read_text(encoding="utf-8").splitlines()
    doc = json.loads(line)
    assert doc["text"] == text                          # CRLF, tabs, zero-width, bidi, emoji kept as they are
    ents = doc["entities"]
    assert all(text[e["start"]:e["end"]] == e["text"] for e in ents)
    expected = sum(len(re.findall(t, text)) for t in ("warfarin", "阿司匹林", "BRCA1"))
    assert len(ents) == expected > 100_000
    # the process holds the text, its segments and its entities, not copies per segment
    assert peak_mb < 1000, f"peak RSS {peak_mb:.0f} MB for a 10 MB text"
