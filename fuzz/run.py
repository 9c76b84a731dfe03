"""Run one fuzz target under atheris (libFuzzer), or the CI smoke run of all of them.

Usage::

    python fuzz/run.py --list
    python fuzz/run.py TARGET --minutes 10          # or --runs 100000
    python fuzz/run.py TARGET --runs 0 CRASH_FILE   # replay one input (a finding)
    python fuzz/run.py --smoke 4                    # CI: every target not in KNOWN_FINDINGS
                                                    # for 4 s each; fails on a finding

The corpus is fuzz/corpus/TARGET/ (``python fuzz/make_corpus.py`` writes the seeds; new
inputs that reach new coverage are added there), crashes go to fuzz/crashes/. Python code
of hftcore is instrumented for coverage (atheris.instrument_imports); the Cython kernels
are covered when built with ``HFTCORE_FUZZ=1`` (see fuzz/README.md). Arguments after
``--`` go to libFuzzer (e.g. ``-- -jobs=2 -max_len=4096``).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("target", nargs="?")
    p.add_argument("inputs", nargs="*", help="files to replay instead of fuzzing")
    p.add_argument("--list", action="store_true", help="list the targets")
    p.add_argument("--minutes", type=float, help="fuzz for this long")
    p.add_argument("--runs", type=int, help="fuzz this many inputs")
    p.add_argument("--max-len", type=int, default=1 << 14, help="largest input (bytes)")
    p.add_argument("--smoke", type=float, metavar="SECONDS",
                   help="run every target without a known finding for SECONDS each")  # fmt: skip
    p.add_argument("--all", action="store_true", help="with --smoke: known findings too")
    p.add_argument("--keep-going", action="store_true",
                   help="record each distinct finding in fuzz/crashes/ and carry on")  # fmt: skip
    return p.parse_known_args(argv)


def _list():
    import targets

    for name, fn in targets.all_targets().items():
        doc = (fn.__doc__ or "").strip().split("\n")[0]
        known = targets.KNOWN_FINDINGS.get(name)
        print(f"{name:34} {doc}" + (f"  [known finding: {known}]" if known else ""))


def _smoke(seconds: float, include_known: bool) -> int:
    """Each target in its own process (a finding aborts libFuzzer), from its seeds."""
    import targets

    names = [n for n in _names() if include_known or n not in targets.KNOWN_FINDINGS]
    failed = []
    for name in names:
        t0 = time.monotonic()
        cmd = [sys.executable, os.path.join(HERE, "run.py"), name,
               "--minutes", str(seconds / 60), "--max-len", "4096"]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        runs = [ln for ln in proc.stderr.splitlines() if ln.startswith("Done ")]
        summary = runs[-1] if runs else f"exit {proc.returncode}"
        print(f"{name:34} {time.monotonic() - t0:5.1f}s  {summary}", flush=True)
        if proc.returncode:
            failed.append(name)
            print(proc.stderr[-4000:], file=sys.stderr)
    if failed:
        print(f"FINDINGS in: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"ok: {len(names)} targets, no finding")
    return 0


def _names():
    # The names without importing hftcore (kept in step with targets.all_targets()).
    import ast

    names = []
    for mod in ("itch_targets.py", "binance_targets.py", "capture_targets.py", "net_targets.py"):
        tree = ast.parse(open(os.path.join(HERE, mod)).read())
        for node in tree.body:
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "TARGETS":
                names += [k.value for k in node.value.keys]
    return names


def _seed_corpus(name: str) -> str:
    """fuzz/corpus/NAME, filled with the seeds when it does not exist yet."""
    corpus = os.path.join(HERE, "corpus", name)
    if not os.path.isdir(corpus) or not os.listdir(corpus):
        # In a child process: making the seeds imports hftcore, which must first be
        # imported here under atheris.instrument_imports (else no coverage).
        subprocess.run([sys.executable, os.path.join(HERE, "make_corpus.py"), name], check=True)
    return corpus


def _signature(exc: BaseException) -> str:
    """What makes two findings the same bug: the exception type and where it was raised
    (the innermost frame in hftcore, else in the harness), or a Finding's first words."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/hftcore/" in f.filename] or frames[-1:]
    where = f"{os.path.basename(ours[-1].filename)}:{ours[-1].lineno}" if ours else "?"
    if type(exc).__name__ == "Finding":
        # The check that failed, without the numbers that differ from input to input.
        where += " " + re.sub(r"\d+", "N", " ".join(str(exc).split()[:4]))
    return f"{type(exc).__name__} at {where}"


def _keep_going(fn, name: str):
    """``fn`` that saves the first input of each distinct finding and returns."""
    import hashlib

    crashes = os.path.join(HERE, "crashes")
    os.makedirs(crashes, exist_ok=True)
    seen = {}

    def run(data: bytes) -> None:
        try:
            fn(data)
        except Exception as exc:  # noqa: BLE001 (every exception here is a finding)
            sig = _signature(exc)
            if sig not in seen:
                tag = hashlib.sha1(sig.encode()).hexdigest()[:10]
                path = os.path.join(crashes, f"{name}-finding-{tag}")
                with open(path, "wb") as f:
                    f.write(data)
                seen[sig] = path
                print(
                    f"\n*** FINDING {len(seen)}: {sig}: {str(exc)[:300]}\n"
                    f"    input ({len(data)} bytes) -> {path}: {data[:300]!r}",
                    flush=True,
                )

    return run


def main(argv=None) -> int:
    args, extra = _parse(sys.argv[1:] if argv is None else argv)
    if args.list:
        _list()
        return 0
    if args.smoke is not None:
        return _smoke(args.smoke, args.all)
    if args.target not in _names():
        print(f"unknown target {args.target!r}; --list shows them", file=sys.stderr)
        return 2

    import atheris

    libfuzzer = [sys.argv[0]]
    if args.inputs:
        libfuzzer += args.inputs
    else:
        crashes = os.path.join(HERE, "crashes")
        os.makedirs(crashes, exist_ok=True)
        libfuzzer += [f"-artifact_prefix={crashes}/{args.target}-", f"-max_len={args.max_len}",
                      "-timeout=20", "-rss_limit_mb=4096", "-print_final_stats=1"]  # fmt: skip
        if args.minutes is not None:
            libfuzzer.append(f"-max_total_time={max(1, round(args.minutes * 60))}")
        if args.runs is not None:
            libfuzzer.append(f"-runs={args.runs}")
        libfuzzer += [a for a in extra if a != "--"]
        libfuzzer.append(_seed_corpus(args.target))
    with atheris.instrument_imports(include=["hftcore"]):
        import targets

        fn = targets.all_targets()[args.target]
    if args.keep_going:
        fn = _keep_going(fn, args.target)
    atheris.Setup(libfuzzer, fn)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
