"""Sphinx configuration for hftcore's documentation.

Build (after installing the package, so autodoc documents the compiled extension
modules and their embedded Cython signatures)::

    pip install ".[docs]" && sphinx-build -W -b html docs docs/_build/html
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst.directives.misc import Include

import hftcore


# Import every hftcore module now. Sphinx 9 documents a compiled module from its .pyi stub
# and, when the module is not imported yet, puts the executed stub in sys.modules in its
# place: a module that cimports it (binance._live cimports feed.capture) would then fail
# to import. With the real modules loaded first, autodoc reads them (their embedded
# signatures) and the stubs stay stubs.
def _import_all():
    import pkgutil

    for info in pkgutil.walk_packages(hftcore.__path__, "hftcore."):
        if info.name.endswith("__main__"):
            continue  # runs the command line
        if info.name.startswith(("hftcore.dask", "hftcore.export")):
            try:
                importlib.import_module(info.name)
            except ImportError:  # the optional extras may be missing
                pass
        else:
            importlib.import_module(info.name)


_import_all()

project = "hftcore"
author = "hftcore developers"
copyright = "hftcore developers"
version = release = hftcore.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# peers.md is written by asv_benchmarks/peers.py and pulled into benchmarks.rst; it is
# not a page of its own.
exclude_patterns = [
    "_build",
    "benchmarks/peers.md",
    "benchmarks/binance_live.md",
    "Thumbs.db",
    ".DS_Store",
]

# numpydoc-style docstrings, read by napoleon.
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = True

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
# Cython's embedsignature puts the signature on the docstring's first line.
autodoc_docstring_signature = True
autosummary_generate = False

# No intersphinx: CI has no network beyond the package registries.

html_theme = "furo" if importlib.util.find_spec("furo") else "alabaster"
html_title = f"hftcore {release}"
html_static_path = []


class IncludeIfExists(Include):
    """``.. include-if-exists:: path``: like ``include``, nothing when the file is absent.

    For generated files that may not exist yet (the peers table written by
    ``asv_benchmarks/peers.py``).
    """

    def run(self):
        source_dir = Path(self.state.document.current_source).parent
        path = source_dir / self.arguments[0]
        if not path.exists():
            text = (
                f"(Not generated for this build of the docs: {path.name} is written by "
                "python asv_benchmarks/peers.py; run it, then rebuild the docs.)"
            )
            return [nodes.paragraph(text=text)]
        return super().run()


def setup(app):
    app.add_directive("include-if-exists", IncludeIfExists)


# Attribute names several classes share (``offset``, ``path``) make numpydoc's type
# references ambiguous; Sphinx then picks one and warns. Not a broken reference.
suppress_warnings = ["ref.python"]
