"""Write the seed corpora: fuzz/corpus/<target>/<sha1 of the input>, one file per seed.

Usage: ``python fuzz/make_corpus.py [TARGET ...]`` (default: every target). Seeds come
from the project's encoders and simulators (see ``targets.seeds``) plus the hand-made
seeds committed in fuzz/seeds/<itch|binance>/<target>.<name>. The corpus is generated,
not committed (.gitignore); atheris adds the inputs it finds to the same folders.
"""

from __future__ import annotations

import hashlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def write(name: str) -> int:
    """Write target ``name``'s seeds; returns how many."""
    import targets

    corpus = os.path.join(HERE, "corpus", name)
    os.makedirs(corpus, exist_ok=True)
    seeds = targets.seeds(name)
    for data in seeds:
        path = os.path.join(corpus, hashlib.sha1(data).hexdigest())
        with open(path, "wb") as f:
            f.write(data)
    return len(seeds)


def main(argv=None) -> int:
    import targets

    names = (sys.argv[1:] if argv is None else argv) or list(targets.all_targets())
    for name in names:
        n = write(name)
        print(f"{name:34} {n:4} seeds -> fuzz/corpus/{name}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
