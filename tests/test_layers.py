"""Imports point one way: every hftcore module imports only its own package or layers
below it (the rule of docs/architecture.rst).

::

    cli -> sim, export -> itch, binance -> feed -> book, net, latency, codec -> _core

``errors`` and ``_version`` sit below everything (``_core`` turns a status into an
``hftcore.errors`` exception, and imports nothing else of hftcore). Sibling packages of
one layer do not import each other (``itch`` knows nothing of ``binance``, ``book`` no
exchange, ``net`` no message format), and nothing imports ``cli``.

Imports are read from the source: the AST of ``.py`` files, the ``import`` / ``cimport``
lines of ``.pyx``, ``.pxd`` and ``.pxi`` files, wherever they stand (module level or
inside a function: an import at call time is an edge too).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from .conftest import REPO

# The sources, not the installed package: a wheel ships no .pyx.
ROOT = (REPO / "hftcore") if REPO is not None else Path("/nonexistent/hftcore")
pytestmark = pytest.mark.skipif(REPO is None, reason="needs the repository's source tree")

# Package (first component under hftcore) -> layer; a module may import its own package
# and strictly lower layers.
LAYERS = {
    "errors": 0,
    "_version": 0,
    "_core": 1,
    "book": 2,
    "net": 2,
    "latency": 2,
    "codec": 2,
    "feed": 3,
    "itch": 4,
    "binance": 4,
    "sim": 5,
    "export": 5,
    "dask": 6,  # hftcore.dask: the public name of hftcore.export.dask (cli imports export)
    "cli": 6,
    "__main__": 7,  # `python -m hftcore`: runs the command line
}
# hftcore/__init__.py re-exports the errors and the version (subpackages load lazily).
INIT_MAY_IMPORT = {"errors", "_version"}

# Known exceptions, each by name: (importing module, function it sits in, target prefix).
# L2Book.apply_depth_json / apply_depth_sbe are deprecated shims that call the Binance
# appliers; they import hftcore.binance when called, never at import time. They go with
# the shims.
ALLOWED = {
    ("hftcore.book._l2book", "apply_depth_json", "hftcore.binance"),
    ("hftcore.book._l2book", "apply_depth_sbe", "hftcore.binance"),
}

_CYTHON_IMPORT = re.compile(
    r"^(?P<indent>[ \t]*)(?:from\s+(?P<from>[\w.]+)\s+c?import\b|c?import\s+(?P<mod>[\w.]+))"
)
_CYTHON_DEF = re.compile(
    r"^(?P<indent>[ \t]*)(?:async\s+)?c?p?def\s+(?:[\w\s*]+\s+)?(?P<name>\w+)\s*\("
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    if not name.startswith("hftcore."):
        return False
    base = ROOT.parent.joinpath(*name.split("."))
    return base.is_dir() or any(base.with_suffix(s).exists() for s in (".py", ".pyx", ".pxd"))


def _py_imports(path: Path):
    """(target module, enclosing function or '') of every import in a Python file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]

    def visit(node, func):
        for child in ast.iter_child_nodes(node):
            name = func
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = child.name
            if isinstance(child, ast.Import):
                for a in child.names:
                    yield a.name, name
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    mod = ".".join(base + ([child.module] if child.module else []))
                else:
                    mod = child.module or ""
                # `from hftcore import itch` imports the module hftcore.itch
                subs = [f"{mod}.{a.name}" for a in child.names if _is_module(f"{mod}.{a.name}")]
                for target in subs or [mod]:
                    yield target, name
            yield from visit(child, name)

    yield from visit(tree, "")


def _cython_imports(path: Path):
    """(target module, enclosing def or '') of every import/cimport line of Cython."""
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        m = _CYTHON_IMPORT.match(line)
        if not m:
            continue
        target = m.group("from") or m.group("mod")
        if target.startswith("."):
            raise AssertionError(f"{path}:{i + 1}: relative cimport; write the full name")
        func = ""
        indent = len(m.group("indent").expandtabs())
        for prev in reversed(lines[:i]):  # the innermost def around the line
            d = _CYTHON_DEF.match(prev)
            if d and len(d.group("indent").expandtabs()) < indent:
                func = d.group("name")
                break
        yield target, func


def _sources():
    for path in sorted(ROOT.rglob("*")):
        if path.suffix in (".py", ".pyx", ".pxd", ".pxi") and "__pycache__" not in path.parts:
            yield path


def _edges():
    """(importing module, file, function, imported hftcore module)."""
    for path in _sources():
        reader = _py_imports if path.suffix == ".py" else _cython_imports
        for target, func in reader(path):
            if target == "hftcore" or target.startswith("hftcore."):
                yield _module_name(path), path.relative_to(ROOT.parent), func, target


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _violation(module: str, target: str) -> str | None:
    src, dst = _package(module), _package(target)
    if module == "hftcore":  # the package __init__
        return None if dst in INIT_MAY_IMPORT else "hftcore/__init__ imports a subpackage"
    if src not in LAYERS:
        return f"{src!r} has no layer in tests/test_layers.py (add it, and to the docs)"
    if dst == "":
        return f"imports the top-level package {target!r}; import from its module"
    if dst not in LAYERS:
        return f"imports {target!r}, which has no layer"
    if src == dst:
        return None
    if src == "_core":  # the bottom layer: only the errors it raises
        return None if dst == "errors" else "_core imports nothing of hftcore but errors"
    if dst == "cli" and src != "__main__":
        return "nothing imports cli"
    if LAYERS[dst] > LAYERS[src]:
        return f"{src} (layer {LAYERS[src]}) imports up into {dst} (layer {LAYERS[dst]})"
    if LAYERS[dst] == LAYERS[src]:
        return f"{src} imports its sibling {dst}"
    return None


EDGES = list(_edges())


def test_the_scan_finds_imports():
    # A broken reader would pass every rule vacuously.
    assert len(EDGES) > 50
    modules = {m for m, *_ in EDGES}
    assert {"hftcore.cli", "hftcore.binance._apply", "hftcore.binance.decode"} <= modules
    assert ("hftcore.cli.demo", "_itch", "hftcore.itch") in {(m, f, t) for m, _, f, t in EDGES}


def test_imports_point_one_way():
    bad = []
    for module, path, func, target in EDGES:
        if any(module == m and func == f and target.startswith(t) for m, f, t in ALLOWED):
            continue
        why = _violation(module, target)
        if why:
            where = f" (in {func})" if func else ""
            bad.append(f"{path}{where}: imports {target}: {why}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    ("module", "target", "ok"),
    [
        ("hftcore.cli.itch", "hftcore.sim.itch", True),
        ("hftcore.sim.binance", "hftcore.binance.sbe_encode", True),
        ("hftcore.binance._apply", "hftcore.book._l2book", True),
        ("hftcore._core.status", "hftcore.errors", True),
        ("hftcore.binance.sync", "hftcore.cli._args", False),
        ("hftcore.book._l2book", "hftcore.binance._apply", False),
        ("hftcore.itch.book", "hftcore.binance.schema", False),
        ("hftcore.binance.decode", "hftcore.sim.binance", False),
        ("hftcore._core.files", "hftcore.book", False),
        ("hftcore.codec.json", "hftcore.book._l2book", False),
    ],
)
def test_the_rule_itself(module, target, ok):
    assert (_violation(module, target) is None) == ok


def test_allowed_exceptions_still_exist():
    # An exception whose import went away must leave ALLOWED too.
    seen = {(m, f) for m, _, f, _ in EDGES}
    for module, func, _ in ALLOWED:
        assert (module, func) in seen, f"{module}.{func}: no such import any more"
