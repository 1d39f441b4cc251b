"""Check ddtool's import graph: no circles, no package importing one above it.

Reads every module under ddtool/ with `ast` (nothing is imported or run) and
collects every `import` / `from ... import`, also those inside functions: an
import hidden in a function still ties the two modules together, it only
moves the failure from import time to call time.

The layers, lowest first (docs/architecture.md). A module may import its own
layer and the layers below; circles are checked between modules, and between
packages that share a layer (data <-> features would be one).

    python scripts/check_imports.py          # prints each problem, exit 1 if any
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

# Lowest first. An entry names a module or package: it covers the module and
# everything under it; the most specific entry wins. "ddtool" alone is the
# package's own __init__ (the version), not everything below it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("ddtool", "ddtool.errors", "ddtool.io", "ddtool.device", "ddtool.locations", "ddtool.onnx_session"),
    ("ddtool.media",),
    ("ddtool.features", "ddtool.data"),
    ("ddtool.models.layers",),
    ("ddtool.models",),
    ("ddtool.train", "ddtool.evaluate", "ddtool.weights", "ddtool.weights_import"),
    ("ddtool.explain",),
    ("ddtool.scan",),
    ("ddtool.cli", "ddtool.__main__"),
)


def module_names(root: Path) -> dict[str, Path]:
    """Dotted name -> file for every module of the package at `root` (a package is its __init__)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The ddtool modules `name` imports anywhere in its file."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = name.split(".") if is_package else name.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            for alias in node.names:
                # `from pkg import mod` imports the module pkg.mod; `from mod import name` the module mod.
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {m for m in found if m in known and m != name}


def layer_of(module: str) -> int | None:
    best, best_len = None, -1
    for index, entries in enumerate(LAYERS):
        for entry in entries:
            covers = module == entry if entry == "ddtool" else module == entry or module.startswith(entry + ".")
            if covers and len(entry) > best_len:
                best, best_len = index, len(entry)
    return best


def package_of(module: str) -> str:
    """The most specific LAYERS entry covering `module` (ddtool.models.layers, ddtool.data, ...)."""
    entries = [e for layer in LAYERS for e in layer]
    covering = [e for e in entries if module == e or (e != "ddtool" and module.startswith(e + "."))]
    return max(covering, key=len) if covering else module


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative): every group of nodes that reach each other, of size > 1."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def problems(root: Path) -> list[str]:
    """Every unplaced module, upward import and import circle under the package folder `root`."""
    modules = module_names(root)
    known = set(modules)
    graph = {name: imports_of(name, path, known) for name, path in modules.items()}
    found = [f"{name}: in no layer of scripts/check_imports.py LAYERS; add it" for name in sorted(graph) if layer_of(name) is None]
    for name in sorted(graph):
        for target in sorted(graph[name]):
            own, theirs = layer_of(name), layer_of(target)
            if own is not None and theirs is not None and theirs > own:
                found.append(f"{name} imports {target}: upward ({package_of(name)} is below {package_of(target)})")
    for group in strongly_connected(graph):
        found.append("import circle: " + " <-> ".join(group))
    packages: dict[str, set[str]] = {}
    for name, targets in graph.items():
        packages.setdefault(package_of(name), set()).update(package_of(t) for t in targets if package_of(t) != package_of(name))
    for group in strongly_connected(packages):
        found.append("package circle: " + " <-> ".join(group))
    return found


def main() -> int:
    root = Path(__file__).resolve().parents[1] / "ddtool"
    found = problems(root)
    for line in found:
        print(line)
    if not found:
        print(f"imports ok: {len(module_names(root))} modules, no circles, nothing imports upward")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
