"""Files on disk for the batch decoders: plain or gzip-compressed (known by their magic
bytes, whatever the name), read into one reused buffer, with a progress bar over the
file's bytes. Shared by :mod:`hftcore.itch.files` and :mod:`hftcore.binance.files`.

Gzip files are decompressed by :class:`GzipReader` in a helper thread that works on the
next pieces while the caller decodes the current one (both release the GIL), through a
bounded queue. The decompressor is igzip (the ``isal`` package, extra ``[isal]``) when it
is importable, else the standard library's zlib: the same bytes either way.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import zlib

from hftcore._core.progress import Progress
from hftcore.errors import DecodeError

__all__ = [
    "is_gzip",
    "progress_bar",
    "open_stream",
    "fill",
    "skip_rest",
    "FIRST_BUFFER",
    "GzipReader",
    "gzip_backend",
]

#: Bytes a chunked reader allocates first; it grows to its chunk size only when the
#: stream fills this (a small .gz file then never zeroes a 64 MiB buffer).
FIRST_BUFFER = 1 << 20

try:  # igzip: about twice the standard library's speed here
    from isal import isal_zlib as _isal_zlib
except ImportError:  # pragma: no cover - the fallback is tested by forcing "zlib"
    _isal_zlib = None

_GZIP_WBITS = 31  # a gzip header and trailer (CRC-32 and length checked), one member


def gzip_backend(name=None) -> str:
    """The decompressor :func:`open_stream` uses for gzip files: ``"isal"`` or ``"zlib"``.

    ``name`` (or the environment variable ``HFTCORE_GZIP``) chooses; the default is
    ``"isal"`` when the ``isal`` package is importable, else ``"zlib"``. Asking for
    ``"isal"`` without it raises :class:`ImportError`.
    """
    name = name or os.environ.get("HFTCORE_GZIP") or ("isal" if _isal_zlib else "zlib")
    if name not in ("isal", "zlib"):
        raise ValueError(f"gzip backend must be 'isal' or 'zlib', got {name!r}")
    if name == "isal" and _isal_zlib is None:
        raise ImportError("the 'isal' gzip backend needs the isal package: pip install isal")
    return name


class GzipStreamError(OSError):
    """A gzip stream that cannot be decompressed; the message names the compressed offset."""


class _End:
    """Queue item after the last piece."""


class GzipReader:
    """A gzip file's decompressed bytes, decompressed in a helper thread.

    Reads ``in_bytes`` of the compressed file at a time and decompresses them into pieces
    of at most ``out_bytes``, which wait in a queue of at most ``depth`` pieces (memory
    stays bounded whatever the compression ratio). Concatenated members (as ``gzip``
    and ``pigz`` write) are read one after the other; zero bytes between or after members
    are padding and skipped, as the standard library does. A corrupt member, trailing
    bytes that are not a member, or a file that ends inside a member raise
    :class:`GzipStreamError` from :meth:`readinto` once every good byte before the fault
    has been read.

    Parameters
    ----------
    raw : binary file
        The open compressed file, read from its current position by the helper thread.
    backend : {"isal", "zlib"}, optional
        See :func:`gzip_backend`.
    """

    def __init__(self, raw, backend=None, *, in_bytes=1 << 18, out_bytes=1 << 21, depth=8):
        self.backend = gzip_backend(backend)
        self._module = _isal_zlib if self.backend == "isal" else zlib
        self._raw = raw
        self._in_bytes = int(in_bytes)
        self._out_bytes = int(out_bytes)
        self._queue: queue.Queue = queue.Queue(maxsize=max(int(depth), 1))
        self._stop = threading.Event()
        self._piece = b""
        self._pos = 0
        self._done = False
        self._error = None
        #: Compressed bytes read by the helper thread so far (for a progress bar).
        self.compressed_read = 0
        self._thread = threading.Thread(target=self._run, name="hftcore-gunzip", daemon=True)
        self._thread.start()

    # -- helper thread -------------------------------------------------------------------
    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self):
        try:
            self._decompress_all()
        except BaseException as exc:  # handed to the reading thread, raised there
            self._put(exc)
        else:
            self._put(_End)

    def _decompress_all(self):
        errors = (zlib.error,) if self._module is zlib else (zlib.error, self._module.error)
        out_bytes = self._out_bytes
        d = None  # the current member's decompressor; None between members
        member_start = 0
        offset = 0  # compressed bytes read
        while not self._stop.is_set():
            data = self._raw.read(self._in_bytes)
            if not data:
                break
            block_start = offset
            offset += len(data)
            self.compressed_read = offset
            while data:
                if d is None:
                    stripped = data.lstrip(b"\x00")  # padding between members
                    if not stripped:
                        break
                    member_start = offset - len(stripped)
                    data = stripped
                    d = self._module.decompressobj(_GZIP_WBITS)
                try:
                    out = d.decompress(data, out_bytes)
                except errors as exc:
                    raise GzipStreamError(
                        f"{exc} (gzip member starting at compressed byte offset "
                        f"{member_start}, in the compressed bytes {block_start}..{offset})"
                    ) from None
                if out and not self._put(out):
                    return
                if d.eof:
                    data = d.unused_data
                    d = None
                elif d.unconsumed_tail:
                    data = d.unconsumed_tail
                elif len(out) == out_bytes:
                    data = b""  # the inflater may hold more output: ask for it
                    while len(out) == out_bytes:
                        out = d.decompress(b"", out_bytes)
                        if out and not self._put(out):
                            return
                    if d.eof:
                        data = d.unused_data
                        d = None
                else:
                    data = b""
        if d is not None and not self._stop.is_set():
            raise GzipStreamError(
                f"compressed file ended inside a gzip member (member starting at compressed "
                f"byte offset {member_start}, file size {offset})"
            )

    # -- reading thread ------------------------------------------------------------------
    def readinto(self, view) -> int:
        """Copy the next decompressed bytes into ``view``; 0 at the end of the stream."""
        view = memoryview(view).cast("B")
        want = len(view)
        got = 0
        while got < want:
            left = len(self._piece) - self._pos
            if left:
                n = min(left, want - got)
                view[got : got + n] = self._piece[self._pos : self._pos + n]
                self._pos += n
                got += n
                continue
            if self._done:
                break
            if got and self._queue.empty():
                break  # hand on what is here rather than wait
            item = self._queue.get()
            if item is _End:
                self._done = True
            elif isinstance(item, BaseException):
                self._done = True
                self._error = item
            else:
                self._piece, self._pos = item, 0
        if not got and self._error is not None:
            raise self._error
        return got

    def read(self, size=-1) -> bytes:
        """Up to ``size`` decompressed bytes (all that is left when negative)."""
        if size is None or size < 0:
            parts = []
            while chunk := self.read(1 << 20):
                parts.append(chunk)
            return b"".join(parts)
        buf = bytearray(size)
        n = self.readinto(buf)
        del buf[n:]
        return bytes(buf)

    def close(self):
        """Stop the helper thread (it ends within ~0.1 s, even mid-file)."""
        self._stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _CompressedPosition:
    """``tell()``: how far into the compressed file the helper thread has read."""

    def __init__(self, reader: GzipReader):
        self._reader = reader

    def tell(self) -> int:
        return self._reader.compressed_read


def is_gzip(path) -> bool:
    """True when the file starts with the gzip magic bytes."""
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def progress_bar(path, progress) -> Progress:
    """A bar over the file's size on disk, named after it; ``progress`` None: on a terminal."""
    enabled = None if progress is None else bool(progress)
    return Progress(os.path.getsize(path), desc=os.path.basename(os.fspath(path)),
                    enabled=enabled)  # fmt: skip


@contextlib.contextmanager
def open_stream(path, backend=None):
    """``(reader, raw, compressed)``: ``raw.tell()`` is the progress on disk, ``reader``
    the (decompressed) stream to read from; for gzip files a :class:`GzipReader` using
    ``backend`` (see :func:`gzip_backend`)."""
    compressed = is_gzip(path)
    with open(path, "rb") as raw:
        if not compressed:
            yield raw, raw, False
            return
        reader = GzipReader(raw, backend)
        try:
            yield reader, _CompressedPosition(reader), True
        finally:
            reader.close()


def fill(reader, raw, view, filled: int, base: int, source) -> tuple[int, bool]:
    """Read into ``view[filled:]`` until it is full or the stream ends.

    Returns ``(filled, eof)``. A corrupt gzip stream raises :class:`DecodeError` at its
    offset in the decompressed stream (``base`` is the stream offset of ``view[0]``); an
    I/O error of a plain file is raised as is.
    """
    eof = False
    while not eof and filled < len(view):
        try:
            got = reader.readinto(view[filled:])
        except (EOFError, OSError, zlib.error) as exc:
            if reader is raw:
                raise
            raise DecodeError(f"corrupt gzip stream: {exc}", base + filled, source) from exc
        if not got:
            eof = True
        filled += got or 0
    return filled, eof


def skip_rest(reader, raw, base: int, source, chunk_bytes: int = 1 << 20) -> int:
    """Read the rest of the stream in bounded chunks and return how many bytes it held.

    For what follows an end marker: memory stays bounded whatever the size, and a corrupt
    gzip stream there raises :class:`DecodeError` like :func:`fill` (``base`` is the
    stream offset reached so far).
    """
    scratch = memoryview(bytearray(chunk_bytes))
    total = 0
    while True:
        got, eof = fill(reader, raw, scratch, 0, base + total, source)
        total += got
        if eof:
            return total
