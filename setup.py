"""Build script: compiles every ``hftcore/**/*.pyx`` into an extension module.

Environment switches
--------------------
HFTCORE_DEBUG=1
    Bounds checks and wraparound on, ``-O0 -g``, and the portable code paths instead of
    the SIMD ones (``HFTCORE_NO_SIMD``): the debug build the test suite also runs
    against (see CONTRIBUTING.md), so both paths are tested.
HFTCORE_PROFILE=1
    Release directives, but ``-g -fno-omit-frame-pointer`` so native profilers
    (py-spy --native, perf) can walk the stacks.
HFTCORE_FUZZ=1 (or =address)
    Release directives, compiled by clang with ``-fsanitize=fuzzer-no-link`` (plus
    AddressSanitizer with ``=address``) so atheris's coverage reaches the kernels; see
    fuzz/README.md. Sets ``CC``/``LDSHARED`` to clang unless already set.
"""

import os
import sys
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("HFTCORE_DEBUG", "") not in ("", "0")
PROFILE = os.environ.get("HFTCORE_PROFILE", "") not in ("", "0")
FUZZ = os.environ.get("HFTCORE_FUZZ", "") not in ("", "0")

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}

if sys.platform == "win32":
    extra_compile_args = ["/O2"] if not DEBUG else ["/Od", "/Zi"]
else:
    if DEBUG:
        extra_compile_args = ["-O0", "-g"]
    else:
        extra_compile_args = ["-O3"]
        if PROFILE:
            extra_compile_args += ["-g", "-fno-omit-frame-pointer"]
        else:
            # Python's own CFLAGS often carry -g: debug info would triple the wheel's size.
            extra_compile_args += ["-g0"]
    extra_compile_args += ["-Wno-unused-function", "-Wno-unreachable-code"]
    if FUZZ:
        asan = os.environ["HFTCORE_FUZZ"] == "address"
        sanitizers = "fuzzer-no-link,address" if asan else "fuzzer-no-link"
        extra_compile_args += [f"-fsanitize={sanitizers}", "-g", "-fno-omit-frame-pointer"]
        os.environ.setdefault("CC", "clang")
        os.environ.setdefault("LDSHARED", "clang -shared" + (" -shared-libasan" if asan else ""))

macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
if DEBUG:
    macros += [("HFTCORE_DEBUG", "1"), ("HFTCORE_NO_SIMD", "1")]


def _mode_changed():
    """True when the last cythonize ran with another directive set (debug/profile/release).

    cythonize only regenerates a ``.c`` older than its ``.pyx``, so without this a release
    build after a debug build would silently reuse the debug ``.c`` files.
    """
    mode = "debug" if DEBUG else ("profile" if PROFILE else "release")
    stamp = Path(__file__).parent / "build" / "hftcore-cython-mode"
    previous = stamp.read_text() if stamp.exists() else None
    stamp.parent.mkdir(exist_ok=True)
    stamp.write_text(mode)
    return previous is not None and previous != mode


def extensions():
    root = Path(__file__).parent
    exts = []
    for pyx in sorted(root.glob("hftcore/**/*.pyx")):
        rel = pyx.relative_to(root)
        name = ".".join(rel.with_suffix("").parts)
        exts.append(
            Extension(
                name,
                [str(rel)],
                include_dirs=[np.get_include()],
                define_macros=macros,
                extra_compile_args=extra_compile_args,
            )
        )
    return exts


setup(
    ext_modules=cythonize(
        extensions(),
        compiler_directives=directives,
        nthreads=os.cpu_count() or 1,
        # The generated .c must match the directive set: regenerate on a mode switch.
        force=_mode_changed(),
    ),
)
