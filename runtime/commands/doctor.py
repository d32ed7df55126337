"""`biotag doctor`: what a support person needs to know about an installation, in one report.

    biotag doctor                 # human-readable report
    biotag doctor --json          # the same as one JSON object
    biotag doctor --build         # first rebuild the bundle's large files if missing (offline)
    biotag doctor --smoke         # also load the model and tag one sentence (in a child process)
    biotag doctor --bundle DIR    # check another bundle than the default one

Reports biotag's version, Python, the platform, the CPU's instruction-set features (from
/proc/cpuinfo), the llama.cpp build (``llama_print_system_info``), onnxruntime's execution
providers, GPU availability, the model bundle's verification result (every file's size and sha256
against its manifest) and whether torch/transformers are present. The whole report runs with every
socket operation refused (a guard installed before anything else is imported), and the report says
how many network attempts were seen: biotag needs none.

Exit code: 0 when the bundle verifies, 3 when it does not (missing, truncated or altered file),
1 when llama.cpp cannot be imported or the smoke test fails.
"""
from __future__ import annotations

import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

# CPU features that matter for llama.cpp / onnxruntime builds (Linux /proc/cpuinfo flag names).
X86_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512vl",
             "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")
ARM_FLAGS = ("neon", "asimd", "asimddp", "sve", "sve2", "i8mm", "bf16")
HEAVY = ("torch", "transformers")
# llama.cpp system-info feature -> the /proc/cpuinfo flag the CPU needs for it
BUILD_NEEDS = {"SSSE3": "ssse3", "AVX": "avx", "AVX2": "avx2", "FMA": "fma", "F16C": "f16c", "BMI2": "bmi2",
               "AVX_VNNI": "avx_vnni", "AVX512": "avx512f", "AVX512_VBMI": "avx512vbmi",
               "AVX512_VNNI": "avx512_vnni", "AVX512_BF16": "avx512_bf16", "AMX_INT8": "amx_int8"}
SMOKE_TEXT = "Aspirin-induced asthma in a patient with BRCA1 mutations."


# -- network guard ------------------------------------------------------------------------------
class NetworkGuard:
    """Refuse (and count) every outgoing socket operation while active."""

    def __init__(self):
        self.attempts: list[str] = []
        self._saved: list[tuple[object, str, object]] = []

    def _refuse(self, what):
        def refuse(*args, **kwargs):
            self.attempts.append(what)
            raise OSError(f"biotag doctor: network access refused ({what})")
        return refuse

    def __enter__(self):
        import socket

        targets = [(socket.socket, "connect"), (socket.socket, "connect_ex"), (socket.socket, "sendto"),
                   (socket, "create_connection"), (socket, "getaddrinfo"), (socket, "gethostbyname")]
        for obj, name in targets:
            self._saved.append((obj, name, getattr(obj, name)))
            setattr(obj, name, self._refuse(f"socket.{name}"))
        return self

    def __exit__(self, *exc):
        for obj, name, orig in reversed(self._saved):
            setattr(obj, name, orig)
        self._saved.clear()
        return False


# -- probes -------------------------------------------------------------------------------------
def cpu_info(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> dict:
    """Model name, logical cores and the relevant feature flags of this CPU."""
    out = {"machine": platform.machine(), "logical_cores": os.cpu_count(), "model": platform.processor() or None,
           "flags": None, "source": None}
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return out
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, val = line.partition(":")
        key = key.strip().lower()
        if key == "model name" and not out["source"]:
            out["model"] = val.strip()
            out["source"] = str(cpuinfo)
        elif key in ("flags", "features") and not flags:
            flags = set(val.split())
    out["source"] = str(cpuinfo)
    arm = any(f in flags for f in ("asimd", "neon")) and "sse4_2" not in flags
    out["flags"] = {f: (f in flags) for f in (ARM_FLAGS if arm else X86_FLAGS)}
    out["_all"] = flags
    return out


def build_mismatch(cpu: dict, llama: dict) -> list[str]:
    """Instruction sets the llama.cpp build was compiled for that this CPU lacks (a build made
    with -march=native on a newer CPU: it would crash with SIGILL here)."""
    flags = cpu.get("_all")
    feats = (llama.get("features") or {}).get("CPU") or {}
    if not flags or platform.machine().lower() not in ("x86_64", "amd64"):
        return []
    return [k for k, v in feats.items() if v == "1" and k in BUILD_NEEDS and BUILD_NEEDS[k] not in flags]


def parse_system_info(text: str) -> dict:
    """``"CPU : SSE3 = 1 | AVX2 = 1 | "`` -> {"CPU": {"SSE3": "1", "AVX2": "1"}}."""
    out: dict[str, dict[str, str]] = {}
    backend = "?"
    for part in text.split("|"):
        part = part.strip()
        if not part:
            continue
        if part.count(":") == 1 and "=" in part.split(":")[1] and "=" not in part.split(":")[0]:
            backend, part = (s.strip() for s in part.split(":", 1))
        if "=" in part:
            k, v = (s.strip() for s in part.split("=", 1))
            out.setdefault(backend, {})[k] = v
        elif ":" in part:
            backend = part.rstrip(":").strip()
            out.setdefault(backend, {})
    return out


def llama_info() -> dict:
    try:
        import llama_cpp
    except Exception as exc:  # a missing or broken llama-cpp-python build
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    info = {"ok": True, "version": getattr(llama_cpp, "__version__", "?")}
    try:
        raw = llama_cpp.llama_print_system_info()
        raw = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        info["system_info"] = raw.strip()
        info["features"] = parse_system_info(raw)
    except Exception as exc:
        info["system_info"] = f"unavailable ({type(exc).__name__}: {exc})"
    for name in ("gpu_offload", "mmap", "mlock"):
        fn = getattr(llama_cpp, f"llama_supports_{name}", None)
        try:
            info[f"supports_{name}"] = bool(fn()) if fn else None
        except Exception:
            info[f"supports_{name}"] = None
    return info


def onnxruntime_info() -> dict:
    try:
        import onnxruntime as ort
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    providers = list(ort.get_available_providers())
    return {"ok": True, "version": ort.__version__, "providers": providers,
            "cuda": "CUDAExecutionProvider" in providers, "device": ort.get_device()}


def heavy_packages() -> dict:
    """Whether torch/transformers are installed (the runtime never needs them) or imported."""
    return {name: {"installed": importlib.util.find_spec(name) is not None, "imported": name in sys.modules}
            for name in HEAVY}


def bundle_info(bundle_dir: str | os.PathLike | None, build: bool = False) -> dict:
    from ..bundle import Bundle
    from ..errors import BiotagError
    from ..tagger import default_bundle_dir

    root = Path(bundle_dir) if bundle_dir else default_bundle_dir()
    info: dict = {"path": str(root), "ok": False}
    t0 = time.perf_counter()
    try:
        b = Bundle.open(root)
        info.update(name=b.name, version=b.version, cache_dir=str(b.cache_dir()))
        base = b.manifest.get("base_model") or {}
        if base:
            info["base_model"] = {k: base.get(k) for k in ("name", "licence", "sha256")}
        missing = [r for r, e in b.manifest.get("files", {}).items()
                   if e.get("location") == "cache" and not b.path(r).is_file()]
        if missing and build:
            from ..bundle import ensure_files  # the bundle builder: numpy + gguf + llama.cpp, no torch

            tb = time.perf_counter()
            ensure_files(b)
            info["built"] = missing
            info["build_seconds"] = round(time.perf_counter() - tb, 1)
        names = b.verify()
        info["files"] = {r: {"size": b.manifest["files"][r]["size"], "sha256": b.manifest["files"][r]["sha256"],
                             "location": b.manifest["files"][r].get("location", "bundle"), "path": str(b.path(r))}
                         for r in names}
        info["ok"] = True
    except BiotagError as exc:
        info["error"] = str(exc)
    except Exception as exc:  # a broken export module etc.: still a report, not a traceback
        info["error"] = f"{type(exc).__name__}: {exc}"
    info["seconds"] = round(time.perf_counter() - t0, 2)
    return info


def _self_command() -> list[str]:
    """How to run `biotag` again: the frozen app's binary or this Python with the CLI module."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "biotag.runtime.cli"]


def smoke_test(bundle_dir: str | None, timeout: float = 600) -> dict:
    """Load the model and tag one sentence in a child process (a crash in llama.cpp, e.g. an
    unsupported instruction, is reported instead of killing the doctor)."""
    cmd = _self_command() + ["doctor", "--smoke-child"] + (["--bundle", bundle_dir] if bundle_dir else [])
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout:.0f} s"}
    out = {"ok": False, "returncode": p.returncode, "seconds": round(time.perf_counter() - t0, 2)}
    try:
        out.update(json.loads(p.stdout.strip().splitlines()[-1]))
    except (IndexError, json.JSONDecodeError):
        tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
        out["error"] = (f"child exited with {p.returncode}" if p.returncode >= 0
                        else f"child killed by signal {-p.returncode}") + (": " + " / ".join(tail) if tail else "")
    return out


def _smoke_child(bundle_dir: str | None) -> int:
    with NetworkGuard() as guard:
        from ..tagger import Tagger

        t0 = time.perf_counter()
        tagger = Tagger.load(bundle_dir, device="cpu")
        t1 = time.perf_counter()
        doc = tagger.tag(SMOKE_TEXT, doc_id="doctor")
        t2 = time.perf_counter()
    ok = all(SMOKE_TEXT[e.start:e.end] == e.text for e in doc.entities) and not guard.attempts
    print(json.dumps({"ok": ok, "load_seconds": round(t1 - t0, 2), "tag_seconds": round(t2 - t1, 2),
                      "text": SMOKE_TEXT, "entities": [[e.start, e.end, e.type, e.text] for e in doc.entities],
                      "network_attempts": guard.attempts}))
    return 0 if ok else 1


def assertion_info() -> dict:
    """The assertion rules in use: their version (a hash of the trigger files) and files."""
    from .. import assertion

    try:
        rules = assertion.default_rules()
        files = [p.name for p in assertion.builtin_files()] + [str(p) for p in assertion.env_files()]
        return {"ok": True, "engine": "rules", "version": rules.version, "triggers": len(rules),
                "files": files}
    except Exception as exc:  # a bad hospital trigger file: reported, not a traceback
        return {"ok": False, "error": str(exc)}


def collect(bundle_dir: str | None = None, build: bool = False, smoke: bool = False) -> dict:
    from .. import __version__

    with NetworkGuard() as guard:
        report = {
            "biotag": {"version": __version__, "location": str(Path(__file__).resolve().parents[2]),
                       "frozen": bool(getattr(sys, "frozen", False))},
            "python": {"version": platform.python_version(), "implementation": platform.python_implementation(),
                       "executable": sys.executable},
            "platform": {"system": platform.system(), "release": platform.release(), "platform": platform.platform(),
                         "machine": platform.machine()},
            "cpu": cpu_info(),
            "llama_cpp": llama_info(),
            "onnxruntime": onnxruntime_info(),
        }
        report["llama_cpp"]["needs_missing_cpu_features"] = build_mismatch(report["cpu"], report["llama_cpp"])
        report["cpu"].pop("_all", None)
        report["gpu"] = {"llama_cpp_offload": bool(report["llama_cpp"].get("supports_gpu_offload")),
                         "onnxruntime_cuda": bool(report["onnxruntime"].get("cuda"))}
        report["gpu"]["available"] = report["gpu"]["llama_cpp_offload"] or report["gpu"]["onnxruntime_cuda"]
        report["bundle"] = bundle_info(bundle_dir, build=build)
        report["assertion"] = assertion_info()
        if smoke:
            report["smoke_test"] = smoke_test(bundle_dir) if report["bundle"]["ok"] else \
                {"ok": False, "error": "skipped: the bundle does not verify"}
        report["heavy_packages"] = heavy_packages()
    attempts = list(guard.attempts) + list((report.get("smoke_test") or {}).get("network_attempts") or [])
    report["network"] = {
        "needed": False,
        "attempts": attempts,
        "statement": "biotag never opens a network connection: the model, tokenizer and all data are "
                     "local files; this report ran with every socket operation refused"
                     + (" and the smoke test too" if smoke else "") + f" ({len(attempts)} attempt(s) seen).",
    }
    return report


def exit_code(report: dict) -> int:
    if not report["bundle"]["ok"]:
        return 3
    if not report["llama_cpp"].get("ok") or report["llama_cpp"].get("needs_missing_cpu_features"):
        return 1
    if "smoke_test" in report and not report["smoke_test"].get("ok"):
        return 1
    if not report.get("assertion", {"ok": True})["ok"]:
        return 1
    if report["network"]["attempts"]:
        return 1
    return 0


def _yn(v) -> str:
    return "yes" if v else "no"


def format_report(r: dict) -> str:
    lines = [f"biotag {r['biotag']['version']}  ({r['biotag']['location']}{', frozen app' if r['biotag']['frozen'] else ''})",
             f"Python {r['python']['version']} ({r['python']['implementation']}, {r['python']['executable']})",
             f"Platform {r['platform']['platform']}"]
    cpu = r["cpu"]
    lines.append(f"CPU {cpu.get('model') or '?'}, {cpu['machine']}, {cpu['logical_cores']} logical cores")
    if cpu["flags"] is None:
        lines.append("  CPU flags: unknown (no /proc/cpuinfo on this system)")
    else:
        have = [f for f, v in cpu["flags"].items() if v]
        lack = [f for f, v in cpu["flags"].items() if not v]
        lines.append("  has:     " + (" ".join(have) or "-"))
        lines.append("  lacks:   " + (" ".join(lack) or "-"))
        if not cpu["flags"].get("avx2") and cpu["machine"] in ("x86_64", "AMD64"):
            lines.append("  note: no AVX2 - tagging works but is slow")
    ll = r["llama_cpp"]
    if ll.get("ok"):
        lines.append(f"llama-cpp-python {ll['version']}: {ll.get('system_info', '')}")
        lines.append(f"  GPU offload: {_yn(ll.get('supports_gpu_offload'))}, mmap: {_yn(ll.get('supports_mmap'))}")
        if ll.get("needs_missing_cpu_features"):
            lines.append("  WARNING: this llama.cpp build uses instructions this CPU lacks ("
                         + ", ".join(ll["needs_missing_cpu_features"]) + "): reinstall llama-cpp-python built "
                         "with CMAKE_ARGS=-DGGML_NATIVE=OFF (the wheelhouse's build)")
    else:
        lines.append(f"llama-cpp-python: NOT USABLE ({ll['error']})")
    ort = r["onnxruntime"]
    lines.append(f"onnxruntime {ort['version']}: providers {', '.join(ort['providers'])}" if ort.get("ok")
                 else f"onnxruntime: NOT USABLE ({ort['error']})")
    g = r["gpu"]
    lines.append(f"GPU: {'available' if g['available'] else 'none'} (llama.cpp offload {_yn(g['llama_cpp_offload'])}, "
                 f"onnxruntime CUDA {_yn(g['onnxruntime_cuda'])}); biotag runs on the CPU without one")
    b = r["bundle"]
    if b["ok"]:
        lines.append(f"Model bundle {b['name']} {b['version']}: OK, {len(b['files'])} file(s) verified "
                     f"(size + sha256) in {b['seconds']} s  [{b['path']}]")
        for rel, f in b["files"].items():
            lines.append(f"  {rel:24s} {f['size'] / 2**20:8.1f} MiB  sha256 {f['sha256'][:16]}…  ({f['location']})")
        if b.get("built"):
            lines.append(f"  rebuilt {', '.join(b['built'])} in {b['build_seconds']} s")
    else:
        lines.append(f"Model bundle: FAILED - {b.get('error')}  [{b['path']}]")
    a = r.get("assertion")
    if a:
        lines.append(f"Assertion rules {a['version']}: {a['triggers']} triggers from "
                     f"{', '.join(a['files'])}" if a["ok"] else f"Assertion rules: FAILED - {a['error']}")
    if "smoke_test" in r:
        s = r["smoke_test"]
        if s.get("ok"):
            ents = ", ".join(f"{e[3]!r} {e[2]}" for e in s.get("entities", [])) or "no entities"
            lines.append(f"Smoke test: OK (load {s['load_seconds']} s, tag {s['tag_seconds']} s): {ents}")
        else:
            lines.append(f"Smoke test: FAILED - {s.get('error') or s}")
    hv = r["heavy_packages"]
    lines.append("torch/transformers: " + ", ".join(
        f"{k} {'installed' if v['installed'] else 'not installed'}{' (imported!)' if v['imported'] else ''}"
        for k, v in hv.items()) + " (the runtime never needs them)")
    lines.append("Network: not needed. " + r["network"]["statement"])
    return "\n".join(lines)


def _doctor(args) -> int:
    if args.smoke_child:
        return _smoke_child(args.bundle)
    report = collect(args.bundle, build=args.build, smoke=args.smoke)
    if args.json:
        print(json.dumps(report, indent=1, ensure_ascii=False))
    else:
        print(format_report(report))
    return exit_code(report)


def add_cli(sub) -> None:
    p = sub.add_parser("doctor", help="report versions, CPU features, llama.cpp build, GPU, bundle check, network",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", default=None, metavar="DIR", help="model bundle to verify (default: the default bundle)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--build", action="store_true",
                   help="rebuild the bundle's missing large files (the GGUF, from the installed base model "
                        "and the adapter; offline, about a minute) before verifying")
    p.add_argument("--smoke", action="store_true", help="also load the model and tag one sentence (child process)")
    p.add_argument("--smoke-child", action="store_true", help=__import__("argparse").SUPPRESS)
    p.set_defaults(func=_doctor)
