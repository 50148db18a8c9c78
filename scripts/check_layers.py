#!/usr/bin/env python3
"""Import-layer contract: fail on an upward or sideways import, or on an import cycle.

The layers, lowest first (a module may import only from its own unit or from a lower layer)::

    0  transcendence
    1  theory, sims
    2  chess_exp.data
    3  chess_exp.model
    4  chess_exp.play
    5  chess_exp.experts
    6  chess_exp.analysis (the analyses may measure the experts, never the reverse)
    7  chess_exp (the package itself and chess_exp.cli: the command table over all stages)
    8  paper_figs

Imports are read with :mod:`ast` from every ``.py`` file of these packages, including imports inside
functions and ``importlib.import_module("literal")`` calls, so a lazy import cannot hide an upward
dependency. Units of the same layer (theory and sims) must not import each other.
A cycle is reported when modules import each other at module level (the imports that run when a
module is first imported).

    python scripts/check_layers.py [--root DIR]

prints one line per violation and exits 1 if there is any, 0 otherwise, 2 on a bad argument.
"""
from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path

#: (unit prefix, layer). The longest matching prefix decides a module's unit.
UNITS: tuple[tuple[str, int], ...] = (
    ("transcendence", 0),
    ("theory", 1),
    ("sims", 1),
    ("chess_exp.data", 2),
    ("chess_exp.model", 3),
    ("chess_exp.play", 4),
    ("chess_exp.experts", 5),
    ("chess_exp.analysis", 6),
    ("chess_exp", 7),
    ("paper_figs", 8),
)
PACKAGES = ("transcendence", "theory", "sims", "chess_exp", "paper_figs")


def unit_of(module: str) -> tuple[str, int] | None:
    """The (unit, layer) a dotted module name belongs to, or None for modules outside the project."""
    best: tuple[str, int] | None = None
    for prefix, layer in UNITS:
        if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, layer)
    return best


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (the deepest project module the statement names)
    path: Path
    line: int
    top_level: bool  # runs when the importing module is imported


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(name: str, known: set[str]) -> str:
    """The longest prefix of ``name`` that is a known module (``from a.b import c`` may name a.b.c)."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in known:
            return candidate
    return name


def imports_of(path: Path, root: Path, known: set[str]) -> list[Import]:
    source = module_name(path, root)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []

    def add(target: str, node: ast.AST, top: bool) -> None:
        if unit_of(target) is not None:
            found.append(Import(source, _resolve(target, known), path, getattr(node, "lineno", 0), top))

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    add(alias.name, child, inner)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = source.split(".") if is_package else source.split(".")[:-1]
                    base = base[: len(base) - (child.level - 1)]
                    prefix = ".".join(base + ([child.module] if child.module else []))
                else:
                    prefix = child.module or ""
                for alias in child.names:
                    add(f"{prefix}.{alias.name}" if alias.name != "*" else prefix, child, inner)
            elif (isinstance(child, ast.Call) and child.args and isinstance(child.args[0], ast.Constant)
                  and isinstance(child.args[0].value, str)
                  and ((isinstance(child.func, ast.Attribute) and child.func.attr == "import_module")
                       or (isinstance(child.func, ast.Name) and child.func.id == "import_module"))):
                add(child.args[0].value, child, inner)
            # TYPE_CHECKING blocks never run, but they still state a dependency: checked like the rest.
            visit(child, inner)

    visit(tree, True)
    return found


def collect(root: Path) -> list[Import]:
    files = [p for pkg in PACKAGES if (root / pkg).is_dir() for p in sorted((root / pkg).rglob("*.py"))]
    known = {module_name(p, root) for p in files}
    return [imp for p in files for imp in imports_of(p, root, known)]


def layer_violations(imports: list[Import], root: Path) -> list[str]:
    out: list[str] = []
    for imp in imports:
        src, dst = unit_of(imp.source), unit_of(imp.target)
        assert src is not None and dst is not None
        if src[0] == dst[0] or dst[1] < src[1]:
            continue
        kind = "sideways" if dst[1] == src[1] else "upward"
        line = (f"{imp.path.relative_to(root)}:{imp.line}: {kind} import: {imp.source} ({src[0]}, layer {src[1]}) "
                f"imports {imp.target} ({dst[0]}, layer {dst[1]})")
        if line not in out:  # `from a import b, c` names the same module twice
            out.append(line)
    return out


def cycles(imports: list[Import]) -> list[list[str]]:
    """Strongly connected components (more than one module, or a self-import) of the module-level graph."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if imp.top_level and imp.target != imp.source:
            graph.setdefault(imp.source, set()).add(imp.target)
            graph.setdefault(imp.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    comps: list[list[str]] = []
    counter = 0

    def strong(v: str) -> None:  # Tarjan, iterative enough for a few hundred modules
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return comps


def _package_parents(imports: list[Import]) -> list[Import]:
    """A package's ``__init__`` importing its own submodules is not a cycle with them: drop those edges."""
    return [imp for imp in imports if not imp.target.startswith(imp.source + ".")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="repository root holding the packages (default: this script's repository)")
    args = parser.parse_args(argv)
    root: Path = args.root
    if not any((root / pkg).is_dir() for pkg in PACKAGES):
        print(f"check_layers: error: --root {root} holds none of the packages {', '.join(PACKAGES)}; "
              "pass the repository root", file=sys.stderr)
        return 2
    try:
        imports = collect(root)
    except SyntaxError as exc:
        print(f"check_layers: error: cannot parse {exc.filename}:{exc.lineno}: {exc.msg}", file=sys.stderr)
        return 1
    problems = layer_violations(imports, root)
    for comp in cycles(_package_parents(imports)):
        problems.append("import cycle (module level): " + " <-> ".join(comp))
    for line in problems:
        print(line)
    n_modules = len({imp.source for imp in imports})
    print(f"check_layers: {len(imports)} imports in {n_modules} modules, {len(problems)} violation(s)",
          file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
