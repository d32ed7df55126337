"""Fingerprints of what the corpus readers yield: per corpus and split, a sha256 over the documents'
ids, texts and entity (start, end, type), and a second one that adds every meta field, the
segments and the read report's counters. A change to a reader that should not change its output is
checked by comparing the fingerprints before and after it.

    python tests/corpus_fingerprint.py [--first N] [--data-dir DIR] [-o OUT.json] [--compare OLD.json]
    python tests/corpus_fingerprint.py --fixture tests/fixtures/corpora/fingerprints.json

Without ``--first`` every document is read (all corpora: about a minute). ``--fixture`` writes
what tests/test_corpus_fingerprints.py compares with: the first FIXTURE_FIRST documents of every
split, and every document of the brat corpora.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path


def _json(o) -> str:
    return json.dumps(o, ensure_ascii=False, sort_keys=True, default=str)


def fingerprint(docs, report=None, first: int | None = None) -> dict:
    core = hashlib.sha256()
    full = hashlib.sha256()
    n = ents = 0
    for d in docs:
        if first is not None and n >= first:
            break
        n += 1
        spans = [(e.start, e.end, e.type) for e in d.entities]
        ents += len(spans)
        core.update(_json([d.id, d.text, spans]).encode("utf-8"))
        core.update(b"\n")
        full.update(_json([d.id, d.text, d.lang, d.meta, [(s.start, s.end) for s in d.segments],
                           [(e.start, e.end, e.type, e.text, e.meta) for e in d.entities]]
                          ).encode("utf-8"))
        full.update(b"\n")
    out = {"docs": n, "entities": ents, "core": core.hexdigest(), "full": full.hexdigest()}
    if report is not None and first is None:
        out["report"] = {"mentions": report.mentions, "repaired": report.repaired,
                         "dropped": report.dropped, "counters": dict(sorted(report.counters.items()))}
    return out


def corpus_fingerprints(data_dir, first: int | None = None, names=None) -> dict:
    from biotag.runtime import corpora as C

    out = {}
    for name, spec in C.CORPORA.items():
        if names and name not in names:
            continue
        for split in spec.splits:
            if not spec.path(split, data_dir).exists():
                continue
            rep = C.ReadReport(name, split)
            out[f"{name}/{split}"] = fingerprint(spec.read(split, data_dir, rep), rep, first)
            print(f"{name}/{split}: {out[f'{name}/{split}']['docs']} docs", file=sys.stderr)
    return out


FIXTURE_FIRST = 300
FIXTURE_COMPLETE = ("jnlpba", "maccrobat2020", "chia")


def fixture(data_dir) -> dict:
    from biotag.runtime import corpora as C

    complete = [n for n in FIXTURE_COMPLETE if n in C.CORPORA]
    return {"first": FIXTURE_FIRST, "first_n": corpus_fingerprints(data_dir, FIXTURE_FIRST),
            "complete": corpus_fingerprints(data_dir, None, complete)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--first", type=int, default=None, help="only the first N documents per split")
    ap.add_argument("--corpus", nargs="+", default=None)
    ap.add_argument("-o", "--output", default=None)
    ap.add_argument("--compare", default=None, help="an earlier output to compare with")
    ap.add_argument("--fixture", default=None, metavar="OUT.json",
                    help="write the test fixture (first N of every split, brat corpora complete)")
    args = ap.parse_args(argv)
    from biotag.runtime.corpora import resolve_data_dir

    if args.fixture:
        fx = fixture(resolve_data_dir(args.data_dir))
        Path(args.fixture).write_text(json.dumps(fx, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        return 0

    fps = corpus_fingerprints(resolve_data_dir(args.data_dir), args.first, args.corpus)
    text = json.dumps(fps, indent=1, sort_keys=True)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    if args.compare:
        old = json.loads(Path(args.compare).read_text(encoding="utf-8"))
        bad = [k for k in old if k in fps and old[k] != fps[k]]
        for k in bad:
            print(f"DIFFERENT {k}: {old[k]} != {fps[k]}", file=sys.stderr)
        missing = [k for k in old if k not in fps]
        for k in missing:
            print(f"MISSING {k}", file=sys.stderr)
        print(f"{len(old) - len(bad) - len(missing)} of {len(old)} splits identical", file=sys.stderr)
        return 1 if bad or missing else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
