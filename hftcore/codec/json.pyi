"""Type stub of hftcore.codec.json: a compiled module with no Python-level API (its nogil
lexer functions are cimported from ``json.pxd``)."""
