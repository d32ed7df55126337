"""The import graph of the product: small files, no import cycle, the runtime imports neither the
exporter nor the GUI, and the GUI imports no command-line module. Every ``import`` counts, also the
ones inside functions (they are cycles and layers all the same, only later)."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"runtime": "biotag.runtime", "desktop": "biotag.desktop", "export": "biotag.export",
            "models": "biotag.models"}
MAX_LINES = 600
# the command-line modules: argument parsing and commands built on the library
CLI_MODULES = ("biotag.runtime.cli", "biotag.runtime.commands", "biotag.runtime.formats.cli",
               "biotag.runtime.corpora.cli", "biotag.runtime.tag_cli", "biotag.runtime.bench",
               "biotag.runtime.doctor")


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT)
    parts = [PACKAGES[rel.parts[0]], *rel.parts[1:]]
    parts[-1] = parts[-1][:-3]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(folders=("runtime", "desktop", "export")) -> dict[str, Path]:
    return {module_name(p): p for f in folders for p in sorted((ROOT / f).rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports (absolute or relative, at any depth in the file)."""
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pkg = base[:len(base) - node.level + 1]
                mod = ".".join(pkg + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        for t in targets:
            # the longest project module that the import names (a name inside a module -> the module)
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def graph(folders=("runtime", "desktop", "export")) -> dict[str, set[str]]:
    mods = modules(folders)
    known = set(mods) | {m for m in modules(("models",))}
    return {m: imports_of(m, p, known) for m, p in mods.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in g:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_no_file_over_the_size_limit():
    big = {str(p.relative_to(ROOT)): n for f in ("runtime", "desktop") for p in (ROOT / f).rglob("*.py")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert big == {}


def test_no_import_cycle():
    assert cycles(graph()) == []


def test_runtime_imports_neither_export_nor_desktop():
    bad = {m: sorted(t for t in ts if t.startswith(("biotag.export", "biotag.desktop", "biotag.models")))
           for m, ts in graph().items() if m.startswith("biotag.runtime")}
    assert {m: ts for m, ts in bad.items() if ts} == {}


def test_the_gui_imports_no_command_line_module():
    bad = {m: sorted(t for t in ts if t.startswith(CLI_MODULES))
           for m, ts in graph().items() if m.startswith("biotag.desktop")}
    assert {m: ts for m, ts in bad.items() if ts} == {}


def test_the_checks_see_what_they_check(tmp_path):
    # a cycle, a layer violation and a relative import are all found
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    p = tmp_path / "m.py"
    p.write_text("from ..export import bundle\nfrom .tagger import Tagger\n\ndef f():\n    import biotag.desktop.app\n")
    known = {"biotag.export", "biotag.export.bundle", "biotag.runtime.tagger", "biotag.desktop.app"}
    assert imports_of("biotag.runtime.m", p, known) == {"biotag.export", "biotag.export.bundle",
                                                        "biotag.runtime.tagger", "biotag.desktop.app"}
