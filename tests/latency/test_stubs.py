"""The .pyi stubs beside the compiled modules name exactly the public runtime API."""

from __future__ import annotations

import ast
import importlib

import pytest

MODULES = ["hftcore.latency.histogram", "hftcore.latency.stages"]


def _stub_names(path):
    tree = ast.parse(path.read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            out[node.name] = {
                n.name if isinstance(n, ast.FunctionDef) else n.target.id
                for n in node.body
                if isinstance(n, ast.FunctionDef) or isinstance(n, ast.AnnAssign)
            }
        elif isinstance(node, ast.FunctionDef):
            out[node.name] = None
        elif isinstance(node, ast.AnnAssign):
            out[node.target.id] = None
    return out


@pytest.mark.parametrize("module", MODULES)
def test_stub_matches_module(repo, module):
    mod = importlib.import_module(module)
    stub = _stub_names(repo / (module.replace(".", "/") + ".pyi"))
    for name, members in stub.items():
        assert hasattr(mod, name), f"{module}.{name} in the stub only"
        if members is None:
            continue
        cls = getattr(mod, name)
        public = {n for n in dir(cls) if not n.startswith("_")}
        dunder = {n for n in members if n.startswith("__")}
        assert members - dunder == public, f"{module}.{name}: stub vs runtime"
    public_classes = {
        n
        for n, v in vars(mod).items()
        if isinstance(v, type) and not n.startswith("_") and v.__module__ == module
    }
    assert public_classes <= set(stub), f"{module}: classes without a stub"
