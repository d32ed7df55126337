"""Packaging rules: runtime/ stays free of torch & co, Qt lives only in desktop/, and the wheel
installs into a fresh virtual environment with every package and the `biotag` console script.
"""
import ast
import json
import os
import re
import shutil
import importlib.metadata
import subprocess
import sys
import textwrap
import venv
import warnings
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# top-level source folder -> import name (the package-dir mapping of pyproject.toml)
PACKAGE_DIRS = {"runtime": "biotag.runtime", "export": "biotag.export",
                "models": "biotag.models", "desktop": "biotag.desktop"}
HEAVY = ("torch", "transformers", "peft", "optimum")
QT = ("PySide6", "PySide2", "shiboken6", "shiboken2", "PyQt5", "PyQt6", "qtpy")
SKIP_DIRS = {"__pycache__", "tests", "node_modules"}


def py_files(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py")
                  if not SKIP_DIRS.intersection(p.relative_to(ROOT).parts))


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE_DIRS[parts[0]]] + parts[1:])


def clean_env() -> dict:
    env = dict(os.environ)
    for k in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "BIOTAG_DEBUG"):
        env.pop(k, None)
    return env


# -- static checks ----------------------------------------------------------------------------
def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import statement and import_module("x")/__import__("x") call."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name in ("import_module", "__import__"):
                out.append((node.lineno, node.args[0].value))
    return out


def forbidden_in(path: Path, banned) -> list[str]:
    return sorted(mod for _, mod in imported_modules(path) if mod.split(".")[0] in banned)


def forbidden_imports(folders, banned) -> list[str]:
    bad = []
    for folder in folders:
        for path in py_files(folder):
            for line, mod in imported_modules(path):
                if mod.split(".")[0] in banned:
                    bad.append(f"{path.relative_to(ROOT)}:{line}: imports {mod}")
    return bad


# a second, cruder net that also sees code the AST walk cannot (exec strings and the like)
HEAVY_RE = re.compile(r"^\s*(?:import|from)\s+(?:%s)\b|import_module\(\s*['\"](?:%s)\b"
                      % ("|".join(HEAVY), "|".join(HEAVY)), re.M)


def test_runtime_never_imports_heavy_packages_static():
    assert py_files("runtime"), "runtime/ has no Python files?"
    assert forbidden_imports(["runtime"], HEAVY) == []
    hits = []
    for path in py_files("runtime"):
        for m in HEAVY_RE.finditer(path.read_text(encoding="utf-8")):
            line = path.read_text(encoding="utf-8").count("\n", 0, m.start()) + 1
            hits.append(f"{path.relative_to(ROOT)}:{line}: {m.group(0).strip()}")
    assert hits == []


def test_qt_only_under_desktop_static():
    assert forbidden_imports(["runtime", "export", "models"], QT) == []


def test_static_checker_catches_imports(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text(textwrap.dedent('''
        """Docstring that says import torch is not allowed."""
        import os
        def f():
            from transformers import AutoModel
            import importlib; importlib.import_module("peft.tuners")
            import torch.nn as nn
    '''))
    mods = sorted(m for _, m in imported_modules(sample))
    assert mods == ["importlib", "os", "peft.tuners", "torch.nn", "transformers"]
    assert [m for m in forbidden_in(sample, HEAVY)] == ["peft.tuners", "torch.nn", "transformers"]
    assert len(HEAVY_RE.findall(sample.read_text())) == 3  # the docstring line is not matched


# -- dynamic check ----------------------------------------------------------------------------
IMPORT_ALL = r'''
import importlib, json, sys, traceback
heavy = %(heavy)r
result = {"imported": [], "skipped": {}, "failed": {}}
import biotag.runtime
for name in %(modules)r:
    try:
        importlib.import_module(name)
        result["imported"].append(name)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing and missing != "biotag" and missing not in heavy:
            result["skipped"][name] = "needs %%s (not installed)" %% exc.name
        else:
            result["failed"][name] = traceback.format_exc(limit=3)
    except Exception:
        result["failed"][name] = traceback.format_exc(limit=3)
import biotag.runtime.cli
biotag.runtime.cli.build_parser()
result["loaded_heavy"] = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
print(json.dumps(result))
'''


def test_runtime_import_pulls_no_heavy_packages(tmp_path):
    modules = [module_name(p) for p in py_files("runtime")]
    code = IMPORT_ALL % {"heavy": HEAVY, "modules": modules}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env=clean_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["failed"] == {}, "\n".join(f"{k}:\n{v}" for k, v in result["failed"].items())
    if result["skipped"]:  # listed, never silent
        warnings.warn("runtime modules not imported (optional native package missing): "
                      + "; ".join(f"{k}: {v}" for k, v in result["skipped"].items()))
    assert set(result["imported"]) | set(result["skipped"]) == set(modules)
    assert result["loaded_heavy"] == [], (
        f"importing biotag.runtime (and building the CLI parser) loaded {result['loaded_heavy'][:10]}; "
        f"keep those imports lazy, inside the functions that need them")


# -- editable install ---------------------------------------------------------------------------
def test_editable_install_from_other_cwd(tmp_path):
    code = ("import json, biotag.runtime, biotag.export, biotag.models, biotag.desktop as d\n"
            "print(json.dumps([m.__file__ for m in (biotag.runtime, biotag.export, biotag.models, d)]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env=clean_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    files = [Path(f).resolve() for f in json.loads(proc.stdout)]
    assert files == [ROOT / folder / "__init__.py" for folder in PACKAGE_DIRS]


# -- wheel ------------------------------------------------------------------------------------
def copy_sources(dst: Path) -> Path:
    """Copy what git would ship (tracked + untracked-not-ignored files), so the build writes its
    build/ and *.egg-info into a scratch copy, never into the working tree."""
    src = dst / "src"
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, capture_output=True, check=True, timeout=60).stdout
        files = [f for f in out.decode().split("\0") if f]
    except (OSError, subprocess.SubprocessError):
        files = None
    if not files:
        shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
            ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".*cache", ".hypothesis", "runs"))
        return src
    for f in files:
        if (ROOT / f).is_file():
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, src / f)
    return src


def build_wheel(tmp: Path) -> Path:
    src = copy_sources(tmp)
    dist = tmp / "dist"
    try:
        # the installed distribution, not a stray ./build folder (a namespace package) in the cwd
        importlib.metadata.version("build")
        cmd = [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(src)]
    except importlib.metadata.PackageNotFoundError:
        cmd = [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
               "--no-index", "-q", "-w", str(dist)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, env=clean_env(), timeout=300)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    wheels = list(dist.glob("biotag-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.mark.slow
def test_wheel_contents(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    # every Python file of every mapped package, subpackages included (a folder missing from
    # [tool.setuptools] packages would silently drop out of the wheel)
    missing = []
    for folder, pkg in PACKAGE_DIRS.items():
        for path in py_files(folder):
            rel = path.relative_to(ROOT / folder)
            if path.parent != ROOT / folder and not (path.parent / "__init__.py").exists():
                missing.append(f"{path.relative_to(ROOT)} (folder has no __init__.py)")
                continue
            arc = "/".join(pkg.split(".") + list(rel.parts))
            if arc not in names:
                missing.append(f"{path.relative_to(ROOT)} -> {arc}")
    assert missing == [], "files not in the wheel:\n" + "\n".join(missing)
    dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
    eps = zipfile.ZipFile(wheel).read(f"{dist_info}/entry_points.txt").decode()
    assert re.search(r"^\[console_scripts\]\s*$", eps, re.M)
    assert re.search(r"^biotag\s*=\s*biotag\.runtime\.cli:main\s*$", eps, re.M), eps
    # no stray top-level modules (runtime/ must only ship as biotag/runtime/)
    assert {n.split("/")[0] for n in names} == {"biotag", dist_info}


@pytest.mark.slow
def test_wheel_installs_into_fresh_venv(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False, clear=True).create(env_dir)
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    py = bindir / ("python.exe" if os.name == "nt" else "python")
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    # install with this interpreter's pip into the new venv (no index, no dependencies)
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps",
                           "--no-index", "-q", str(wheel)],
                          capture_output=True, text=True, env=clean_env(), timeout=300)
    installed_by_pip = proc.returncode == 0
    if not installed_by_pip:  # an older pip without --python: unpack the wheel by hand
        zipfile.ZipFile(wheel).extractall(purelib)
    # the base dependencies (numpy, ...) come from this environment, appended *after* the venv's
    # own site-packages; a plain path line in a .pth does not run that folder's .pth files, so the
    # editable biotag finder of this environment stays off
    import sysconfig
    Path(purelib, "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    code = textwrap.dedent("""
        import json, sys
        import biotag.runtime, biotag.export, biotag.models, biotag.desktop
        from importlib.metadata import distribution
        mods = [m for n, m in sys.modules.items() if n == "biotag" or n.startswith("biotag.")]
        files = [getattr(m, "__file__", None) for m in mods] + list(biotag.__path__)
        print(json.dumps({"prefix": sys.prefix, "files": [f for f in files if f],
                          "version": distribution("biotag").version,
                          "dist": str(distribution("biotag").locate_file("biotag/runtime/__init__.py"))}))
    """)
    proc = subprocess.run([str(py), "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env=clean_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    venv_root = env_dir.resolve()
    assert Path(info["prefix"]).resolve() == venv_root
    assert len(info["files"]) >= 5
    for f in info["files"]:
        p = Path(f).resolve()
        assert p.is_relative_to(venv_root), f"{f} was not imported from the venv"
        assert not p.is_relative_to(ROOT), f"{f} comes from the working tree"
    assert Path(info["dist"]).resolve().is_relative_to(venv_root)
    assert info["version"] == "0.1.0"

    if installed_by_pip:  # pip wrote the console script from entry_points.txt
        assert (bindir / "biotag").exists()
        cli = subprocess.run([str(bindir / "biotag"), "--version"], capture_output=True, text=True,
                             cwd=tmp_path, env=clean_env(), timeout=180)
        assert cli.returncode == 0, cli.stderr
        assert "biotag 0.1.0" in cli.stdout
