"""What the corpus readers yield must not change unnoticed (trained models depend on it): the
sha256 of document ids, texts and entity spans/types (and, separately, of all meta fields) of
the first documents of every corpus split, and of every document of the brat corpora, against
tests/fixtures/corpora/fingerprints.json. Needs ../shared/data (skipped otherwise). After an
intended change of a reader's output, regenerate the fixture:

    python tests/corpus_fingerprint.py --fixture tests/fixtures/corpora/fingerprints.json
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from corpus_fingerprint import corpus_fingerprints  # noqa: E402

FIXTURE = HERE / "fixtures" / "corpora" / "fingerprints.json"
DATA_DIR = Path(os.environ.get("BIOTAG_DATA_DIR") or HERE.parents[0].parent / "shared" / "data")


@pytest.fixture(scope="module")
def expected():
    if not (DATA_DIR / "counts.json").is_file():
        pytest.skip(f"corpora not found at {DATA_DIR} (set BIOTAG_DATA_DIR to the shared/data folder)")
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


@pytest.mark.data
def test_first_documents_of_every_split_unchanged(expected):
    got = corpus_fingerprints(DATA_DIR, expected["first"])
    diff = {k: (want, got.get(k)) for k, want in expected["first_n"].items() if got.get(k) != want}
    assert not diff, f"reader output changed: {sorted(diff)}"


@pytest.mark.data
def test_brat_corpora_unchanged(expected):
    names = sorted({k.split("/")[0] for k in expected["complete"]})
    got = corpus_fingerprints(DATA_DIR, None, names)
    diff = {k: (want, got.get(k)) for k, want in expected["complete"].items() if got.get(k) != want}
    assert not diff, f"reader output changed: {sorted(diff)}"
