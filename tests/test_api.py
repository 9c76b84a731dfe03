"""The public namespace, locked: each package's ``__all__`` is exactly what is listed here
and every name in it exists. A name added or removed is a deliberate change to this file
(and to CHANGELOG.md), never a side effect; ``from hftcore import *`` must work.
"""

from __future__ import annotations

import importlib

import pytest

API = {
    "hftcore": [
        "__version__",
        "HftcoreError",
        "DecodeError",
        "SequenceGap",
        "BookFull",
        "BookError",
        "SnapshotError",
        "ProtocolError",
        "ConnectionClosed",
        "itch",
        "binance",
        "book",
        "feed",
        "net",
        "latency",
        "sim",
    ],
    "hftcore.itch": [
        "spec",
        "MESSAGES",
        "BY_TYPE",
        "TYPES",
        "dtype",
        "encode",
        "encode_table",
        "encode_stream",
        "decode",
        "Tables",
        "concat_tables",
        "iter_messages",
        "read_file",
        "iter_file",
        "OrderBook",
        "Feed",
    ],
    "hftcore.binance": [
        "KINDS",
        "SCALE",
        "BinanceTables",
        "decode",
        "decode_many",
        "decode_many_sbe",
        "decode_sbe",
        "read_file",
        "iter_file",
        "concat_tables",
        "apply_depth_json",
        "apply_depth_sbe",
        "apply_depth_json_many",
        "apply_depth_json_after",
        "apply_depth_sbe_many",
        "APPLIED",
        "STALE",
        "GAP",
        "NOT_A_DIFF",
        "OTHER_SYMBOL",
        "BookSync",
        "Feed",
        "FeedError",
        "replay",
        "DepthHeader",
        "AggTrade",
        "BookTicker",
        "ControlReply",
        "DepthSnapshot",
        "DepthUpdate",
        "ErrorReply",
        "Kline",
        "ServerShutdown",
        "Trade",
        "UnknownEvent",
    ],
    "hftcore.book": ["L2Book"],
    "hftcore.binance.feed": [
        "Feed",
        "FeedError",
        "RingTables",
        "ReplayResult",
        "replay",
        "stream_names",
        "DEFAULT_URLS",
        "SBE_URL",
        "RING_DTYPES",
        "LiveConsumer",
    ],
    "hftcore.feed.capture": [
        "CaptureWriter",
        "RecordingConsumer",
        "CaptureRecord",
        "CaptureInfo",
        "CaptureTable",
        "CaptureReader",
        "read_capture",
        "read_capture_table",
        "capture_info",
        "replay_into",
        "capture_to_ndjson",
        "crc32c",
        "crc32c_hardware",
        "RECORD_DTYPE",
        "MAGIC",
        "VERSION",
        "FILE_HEADER_SIZE",
        "RECORD_HEADER_SIZE",
        "RECORD_MARKER",
        "FLAG_AFTER_GAP",
        "AppendResult",
        "CAPTURE_OK",
        "CAPTURE_DROPPED",
        "CAPTURE_TOO_LARGE",
        "CAPTURE_CLOSED",
        "CAPTURE_ERROR",
    ],
    "hftcore.net.ws": ["connect", "WebSocket", "FrameParser", "OPCODES", "CLOSE_CODES"],
    "hftcore.feed": [
        "PinnedThread",
        "FeedThread",
        "thread_stats",
        "choose_cpu",
        "cpu_facts",
        "parse_cpu_list",
        "CpuFacts",
        "CpuError",
    ],
    "hftcore.sim": ["itch", "binance", "itch_exchange", "binance_exchange"],
    "hftcore.sim.itch_exchange": [
        "message_offsets",
        "load_day",
        "MoldUDP64Server",
        "SoupBinTCPServer",
    ],
    "hftcore.net.moldudp64": [
        "MoldUDP64Sequencer",
        "open_socket",
        "parse_packet",
        "encode_packet",
        "encode_heartbeat",
        "encode_end_of_session",
        "encode_request",
        "parse_request",
        "HEADER_LENGTH",
        "SESSION_LENGTH",
        "END_OF_SESSION",
    ],
    "hftcore.net.soupbintcp": [
        "SoupBinTCPFramer",
        "SoupBinTCPSession",
        "LoginRejected",
        "parse_packets",
        "encode_packet",
        "encode_login_request",
        "encode_login_accepted",
        "encode_login_rejected",
        "encode_sequenced",
        "encode_unsequenced",
        "encode_debug",
        "SERVER_HEARTBEAT",
        "CLIENT_HEARTBEAT",
        "END_OF_SESSION",
        "LOGOUT_REQUEST",
        "HEARTBEAT_INTERVAL",
        "HEARTBEAT_TIMEOUT",
    ],
    "hftcore.net.guard": ["GuardedConsumer"],
    "hftcore.sim.binance_exchange": [
        "BinanceExchange",
        "ConnectionInfo",
        "DEFAULTS",
        "rest_weight",
        "render",
    ],
    "hftcore.latency": ["Histogram", "Stages", "Jitter", "Report", "PeriodicLogger", "format_ns"],
}

# Names that moved, and must stay importable from where they were for this release:
# (old module, name, new home).
MOVED = [
    ("hftcore.binance.sync", "snapshot_url", "hftcore.binance.rest"),
    ("hftcore.binance.sync", "rest_snapshot", "hftcore.binance.rest"),
    ("hftcore.binance.sync", "parse_snapshot", "hftcore.binance.rest"),
    ("hftcore.binance.sync", "MARKETS", "hftcore.binance.schema"),
    ("hftcore.binance.sync", "SnapshotError", "hftcore.errors"),
    ("hftcore.binance.decode", "SCALE", "hftcore.binance.schema"),
    ("hftcore.sim.binance", "SCALE", "hftcore.binance.schema"),
    ("hftcore.sim.binance", "MARKETS", "hftcore.binance.schema"),
    ("hftcore.binance.sbe_encode", "TRADES_STREAM_EVENT", "hftcore.binance.schema"),
    ("hftcore.binance.sbe_encode", "DEPTH_DIFF_STREAM_EVENT", "hftcore.binance.schema"),
]


@pytest.mark.parametrize("package", sorted(API))
def test_all_is_locked(package):
    mod = importlib.import_module(package)
    got = list(mod.__all__)
    assert len(got) == len(set(got)), f"{package}.__all__ has duplicates"
    assert sorted(got) == sorted(API[package])


@pytest.mark.parametrize("package", sorted(API))
def test_every_exported_name_exists(package):
    mod = importlib.import_module(package)
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert not missing, f"{package}.__all__ names what does not exist: {missing}"


@pytest.mark.parametrize("package", sorted(API))
def test_star_import(package):
    namespace: dict = {}
    exec(f"from {package} import *", namespace)
    assert set(API[package]) <= set(namespace)


def test_codec_if_present():
    # hftcore.codec is the exchange-free building blocks (JSON lexer, decimals, SBE
    # primitives, output tables); where it exists, its __all__ must resolve too.
    try:
        codec = importlib.import_module("hftcore.codec")
    except ModuleNotFoundError:
        pytest.skip("no hftcore.codec in this build")
    names = list(getattr(codec, "__all__", []))
    assert all(hasattr(codec, n) for n in names), names
    exec("from hftcore.codec import *", {})


@pytest.mark.parametrize(("old", "name", "new"), MOVED)
def test_moved_names_still_import(old, name, new):
    assert getattr(importlib.import_module(old), name) is getattr(
        importlib.import_module(new), name
    )


def test_subpackages_load_lazily():
    import subprocess
    import sys

    code = "import sys, hftcore; print(sorted(m for m in sys.modules if m.startswith('hftcore')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    assert out.strip() == "['hftcore', 'hftcore._version', 'hftcore.errors']"


# Packages of optional extras ([parquet], [dask]): locked the same way where installed.
OPTIONAL_API = {
    "hftcore.export": [
        "to_arrow",
        "itch_schema",
        "bbo_schema",
        "binance_schema",
        "date_from_name",
        "itch_day_to_parquet",
        "binance_to_parquet",
        "day_label",
        "source_stem",
        "is_complete",
        "DEFAULT_ROW_GROUP_ROWS",
        "write_lobster",
    ],
    "hftcore.dask": [
        "read_itch",
        "read_binance",
        "read_bbo",
        "itch_partitions",
        "convert_days",
        "start_client",
    ],
}


@pytest.mark.parametrize("package", sorted(OPTIONAL_API))
def test_optional_all_is_locked(package):
    pytest.importorskip("pyarrow")
    if package == "hftcore.dask":
        pytest.importorskip("dask.dataframe")
    mod = importlib.import_module(package)
    assert sorted(mod.__all__) == sorted(OPTIONAL_API[package])
    assert all(hasattr(mod, n) for n in mod.__all__)
