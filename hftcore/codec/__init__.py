"""Exchange-free decoding building blocks (Cython ``.pxd`` interfaces, no Binance names).

- ``swar.pxd``: word-at-a-time digit arithmetic (SWAR, and SSE2 on x86-64), powers of
  ten, the checked multiply.
- ``json.pxd`` / ``json.pyx``: a nogil JSON lexer (whitespace, items, strings, keys,
  literals, integers, integer times scaled to ns with an overflow check).
- ``decimal.pxd``: exact fixed-point decimals with 8 implied decimals, the print-shape
  guess, ``[price, qty]`` levels into a :c:type:`LevelSink`.
- ``levels.pxd``: the level sink, a strided row target (a table's rows or a stack
  buffer) that level parsers write into.
- ``sbe.pxd``: SBE message header, ``groupSize16Encoding`` groups, ``varString8``, and
  the exact scaling of ``mantissa * 10**exponent`` to 8 implied decimals.

Hot primitives are ``inline`` in the ``.pxd`` files so every decoder that cimports them
gets them inlined; each exchange's decoder (``hftcore/binance/``) keeps only its message
schema and dispatch.
"""
