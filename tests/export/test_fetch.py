"""hftcore itch list / fetch against a local HTTP server (never the internet)."""

from __future__ import annotations

import hashlib
import http.server
import re
import threading

import pytest

from hftcore.cli import main
from hftcore.export import fetch

DAY = bytes(range(256)) * 4000  # 1,024,000 bytes
NAME = "01302020.NASDAQ_ITCH50.gz"
OTHER = "12302019.NASDAQ_ITCH50.gz"


class _Server:
    """Serves ``files`` with a listing page and HTTP Range; ``cut_first`` makes the first
    GET of a day file send only that many bytes, then close (an interrupted download)."""

    def __init__(self, files, cut_first=None):
        self.files = files
        self.cut_first = cut_first
        self.requests = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                path = self.path.split("?")[0]
                owner.requests.append((path, self.headers.get("Range")))
                if path == "/itch/":
                    body = "".join(f'<a href="{n}">{n}</a><br>' for n in owner.files).encode()
                    body = b"<html><a href='../'>up</a>" + body + b"</html>"
                    return self._send(200, body)
                name = path.removeprefix("/itch/")
                if name not in owner.files:
                    return self._send(404, b"not found")
                data = owner.files[name]
                start = 0
                rng = self.headers.get("Range")
                if rng:
                    start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
                    if start >= len(data):
                        return self._send(416, b"")
                part = data[start:]
                self.send_response(206 if rng else 200)
                self.send_header("Content-Length", str(len(part)))
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if owner.cut_first and name.endswith(".gz"):
                    n, owner.cut_first = owner.cut_first, None
                    self.wfile.write(part[:n])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(part)

            def _send(self, code, body):
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/itch/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def _files(md5=None):
    return {
        NAME: DAY,
        NAME + ".md5sum": f"{md5 or hashlib.md5(DAY).hexdigest()}  {NAME}\n".encode(),
        OTHER: b"x" * 100,
    }


def test_list(capsys):
    with _Server(_files()) as srv:
        days = fetch.list_days(srv.url)
        assert [n for _, n in days] == [OTHER, NAME]
        assert main(["itch", "list", "--base-url", srv.url]) == 0
    out = capsys.readouterr().out
    assert "2020-01-30  01302020.NASDAQ_ITCH50.gz" in out


def test_fetch_resumes_after_an_interruption_and_checks_md5(tmp_path, capsys):
    with _Server(_files(), cut_first=300_000) as srv:
        rc = main(["itch", "fetch", "2020-01-30", "--dest", str(tmp_path), "--base-url", srv.url])
        ranges = [r for p, r in srv.requests if p.endswith(NAME)]
    assert rc == 0
    assert (tmp_path / NAME).read_bytes() == DAY
    assert not (tmp_path / (NAME + ".part")).exists()
    assert ranges == [None, "bytes=300000-"]  # the second try resumed where the first stopped
    assert "md5 matches the published checksum" in capsys.readouterr().out
    # Already there: skipped, no download.
    with _Server(_files()) as srv:
        assert main(["itch", "fetch", "01302020", "--dest", str(tmp_path), "--base-url",
                     srv.url]) == 0  # fmt: skip
        assert not [p for p, _ in srv.requests if p.endswith(".gz")]


def test_fetch_resumes_a_part_left_by_an_earlier_run(tmp_path):
    (tmp_path / (NAME + ".part")).write_bytes(DAY[:12345])
    with _Server(_files()) as srv:
        res = fetch.fetch_day("2020-01-30", tmp_path, url=srv.url)
        assert [r for p, r in srv.requests if p.endswith(NAME)] == ["bytes=12345-"]
    assert res["checked"] is True and (tmp_path / NAME).read_bytes() == DAY


def test_fetch_bad_checksum_and_missing_day(tmp_path, capsys):
    with _Server(_files(md5="0" * 32)) as srv:
        with pytest.raises(fetch.FetchError, match="differs from the published"):
            fetch.fetch_day("2020-01-30", tmp_path, url=srv.url)
        assert not list(tmp_path.iterdir())
        rc = main(["itch", "fetch", "2021-01-01", "--dest", str(tmp_path), "--base-url", srv.url])
    assert rc == 1 and "no ITCH 5.0 day file for 2021-01-01" in capsys.readouterr().err


def test_no_published_checksum_is_reported(tmp_path):
    files = _files()
    del files[NAME + ".md5sum"]
    with _Server(files) as srv:
        res = fetch.fetch_day("2020-01-30", tmp_path, url=srv.url)
    assert res["checked"] is None and res["md5"] == hashlib.md5(DAY).hexdigest()


def test_base_url_from_environment(monkeypatch):
    monkeypatch.setenv("HFTCORE_ITCH_URL", "http://mirror.example/itch")
    assert fetch.base_url() == "http://mirror.example/itch/"
    monkeypatch.delenv("HFTCORE_ITCH_URL")
    assert fetch.base_url() == fetch.DEFAULT_BASE_URL
