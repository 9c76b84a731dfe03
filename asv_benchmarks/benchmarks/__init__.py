"""asv benchmarks of hftcore's hot paths (one ``bench_*.py`` module per area).

The shared helpers (synthetic inputs cached on disk, message-rate tracking) are in
:mod:`benchmarks.bench_common`. See CONTRIBUTING.md, "Benchmarks", for the workflow.
"""
