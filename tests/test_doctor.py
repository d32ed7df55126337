"""`biotag doctor`: the report's facts, the bundle verdict and its exit code, the network guard."""
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from biotag.runtime import doctor

ROOT = Path(__file__).resolve().parents[1]


def run_doctor(*args, env_extra=None, timeout=300):
    env = dict(os.environ, **(env_extra or {}))
    env.pop("BIOTAG_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "biotag.runtime.cli", "doctor", *args],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def test_doctor_json_on_tiny_bundle(tiny_bundle, tmp_path):
    p = run_doctor("--bundle", str(tiny_bundle), "--json", env_extra={"BIOTAG_CACHE": str(tmp_path)})
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    from biotag.runtime import __version__
    import llama_cpp

    assert r["biotag"]["version"] == __version__
    assert r["python"]["version"] == ".".join(map(str, sys.version_info[:3]))
    assert r["llama_cpp"]["ok"] and r["llama_cpp"]["version"] == llama_cpp.__version__
    assert "CPU" in r["llama_cpp"]["features"]          # parsed llama_print_system_info()
    assert r["llama_cpp"]["supports_gpu_offload"] == bool(llama_cpp.llama_supports_gpu_offload())
    assert "CPUExecutionProvider" in r["onnxruntime"]["providers"]
    assert r["gpu"]["available"] == (r["gpu"]["llama_cpp_offload"] or r["gpu"]["onnxruntime_cuda"])
    if Path("/proc/cpuinfo").is_file():
        flags = set()
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags = set(line.split(":", 1)[1].split())
                break
        for f, v in r["cpu"]["flags"].items():
            assert v == (f in flags), f
    b = r["bundle"]
    assert b["ok"] and b["name"] == "tiny-test" and set(b["files"]) == {"model.gguf"}
    assert b["files"]["model.gguf"]["sha256"] == json.loads((tiny_bundle / "manifest.json").read_text()
                                                            )["files"]["model.gguf"]["sha256"]
    assert r["network"]["needed"] is False and r["network"]["attempts"] == []
    assert r["heavy_packages"]["torch"]["imported"] is False   # the doctor itself never imports torch
    assert r["heavy_packages"]["transformers"]["imported"] is False


def test_doctor_fails_on_altered_bundle(tiny_bundle, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_bundle, bad)
    with open(bad / "model.gguf", "r+b") as f:   # same size, one byte flipped
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    p = run_doctor("--bundle", str(bad))
    assert p.returncode == 3, p.stdout + p.stderr
    assert "Model bundle: FAILED" in p.stdout and "sha256 does not match" in p.stdout
    p = run_doctor("--bundle", str(tmp_path / "nowhere"), "--json")
    assert p.returncode == 3
    r = json.loads(p.stdout)
    assert r["bundle"]["ok"] is False and "not a model bundle" in r["bundle"]["error"]


def test_doctor_smoke_test_tags_offline(tiny_bundle):
    p = run_doctor("--bundle", str(tiny_bundle), "--smoke")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Smoke test: OK" in p.stdout
    assert "0 attempt(s) seen" in p.stdout


def test_network_guard_refuses_and_counts():
    with doctor.NetworkGuard() as g:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", 9))
        with pytest.raises(OSError):
            socket.getaddrinfo("example.org", 443)
        s = socket.socket()
        try:
            with pytest.raises(OSError):
                s.connect(("127.0.0.1", 9))
        finally:
            s.close()
    assert g.attempts == ["socket.create_connection", "socket.getaddrinfo", "socket.connect"]
    assert socket.getaddrinfo.__module__ == "socket"      # restored


def test_cpu_flags_and_build_mismatch(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Old Laptop CPU\nflags\t\t: fpu sse4_2 avx avx2 fma f16c bmi2\n\n"
                    "processor\t: 1\nmodel name\t: Old Laptop CPU\nflags\t\t: fpu sse4_2 avx avx2 fma f16c bmi2\n")
    cpu = doctor.cpu_info(info)
    assert cpu["model"] == "Old Laptop CPU"
    assert cpu["flags"]["avx2"] is True and cpu["flags"]["avx512f"] is False and cpu["flags"]["amx_tile"] is False
    native = doctor.parse_system_info("CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | FMA = 1 | AVX512 = 1 | "
                                      "AVX512_VNNI = 1 | LLAMAFILE = 1 | OPENMP = 1 | ")
    assert native["CPU"]["AVX512"] == "1" and native["CPU"]["OPENMP"] == "1"
    if doctor.platform.machine().lower() in ("x86_64", "amd64"):
        assert doctor.build_mismatch(cpu, {"features": native}) == ["AVX512", "AVX512_VNNI"]
        portable = doctor.parse_system_info("CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | FMA = 1 | F16C = 1 | ")
        assert doctor.build_mismatch(cpu, {"features": portable}) == []
