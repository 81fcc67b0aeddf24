"""Tests for lightning_ser.data.download against a local HTTP server (127.0.0.1, no internet)."""

from __future__ import annotations

import hashlib
import io
import re
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lightning_ser.data import download as dl
from lightning_ser.data.download import (
    ARCHIVES,
    RAVDESS_SPEECH,
    DownloadError,
    download_corpus,
    fetch,
    safe_extract,
)

MEMBERS = {
    "Actor_01/03-01-01-01-01-01-01.wav": b"RIFF" + bytes(range(256)) * 40,
    "Actor_01/03-01-05-02-01-02-01.wav": b"RIFF" + bytes(range(255, -1, -1)) * 40,
    "Actor_02/03-01-03-01-02-01-02.wav": b"RIFF" + b"\x01\x02\x03" * 3000,
}


def make_zip(members: dict[str, bytes], compress: bool = False) -> bytes:
    """A zip archive (in memory) holding ``members``; stored by default so it is not tiny."""
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return buf.getvalue()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@dataclass
class ServerState:
    """What the test server serves and what it saw."""

    files: dict[str, bytes] = field(default_factory=dict)
    support_ranges: bool = True
    cut_after: int | None = None  # one-shot: close the connection after this many body bytes
    requests: list[dict[str, str | None]] = field(default_factory=list)
    sent: list[tuple[int, int]] = field(default_factory=list)  # (status, body bytes written)
    lock: threading.Lock = field(default_factory=threading.Lock)


class RangeHandler(BaseHTTPRequestHandler):
    """Serves ``ServerState.files`` with ``Range: bytes=N-`` support and optional cut-offs."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:  # http.server naming
        state = self.server.state
        with state.lock:
            state.requests.append({"path": self.path, "range": self.headers.get("Range")})
        body = state.files.get(self.path.split("?", 1)[0])
        if body is None:
            self.send_error(404, "Not Found")
            return
        start, status = 0, 200
        range_header = self.headers.get("Range")
        if range_header and state.support_ranges:
            match = re.fullmatch(r"bytes=(\d+)-", range_header)
            assert match, range_header
            start = int(match.group(1))
            if start >= len(body):
                with state.lock:  # record before answering: the client may finish first
                    state.sent.append((416, 0))
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        payload = body[start:]
        self.send_response(status)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(payload)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        with state.lock:
            cut, state.cut_after = state.cut_after, None
            if cut is not None:
                payload = payload[:cut]
                self.close_connection = True
            state.sent.append((status, len(payload)))  # before writing: the client may finish first
        self.wfile.write(payload)
        self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: ServerState


@pytest.fixture
def server() -> Iterator[tuple[str, ServerState]]:
    """A local HTTP server in a background thread; yields (base URL, state)."""
    state = ServerState()
    httpd = _Server(("127.0.0.1", 0), RangeHandler)
    httpd.state = state
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def corpus_zip() -> bytes:
    return make_zip(MEMBERS)


# ------------------------------------------------------------------------------------------
# constants
# ------------------------------------------------------------------------------------------


def test_ravdess_archive_constants() -> None:
    assert ARCHIVES == {"ravdess": RAVDESS_SPEECH}
    assert RAVDESS_SPEECH.name == "Audio_Speech_Actors_01-24.zip"
    assert RAVDESS_SPEECH.url == (
        "https://zenodo.org/records/1188976/files/Audio_Speech_Actors_01-24.zip?download=1"
    )
    assert RAVDESS_SPEECH.size == 208468073
    assert RAVDESS_SPEECH.md5 == "bc696df654c87fed845eb13823edef8a"


def test_default_download_dir_honours_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert dl.default_download_dir() == tmp_path / "xdg" / "lightning_ser" / "downloads"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert dl.default_download_dir() == tmp_path / "home" / ".cache" / "lightning_ser" / "downloads"


# ------------------------------------------------------------------------------------------
# fetch
# ------------------------------------------------------------------------------------------


def test_download_corpus_full(
    server: tuple[str, ServerState], corpus_zip: bytes, tmp_path: Path
) -> None:
    base, state = server
    state.files["/files/corpus.zip"] = corpus_zip
    target = tmp_path / "data" / "ravdess"
    out = download_corpus(
        "ravdess",
        target,
        cache_dir=tmp_path / "cache",
        url=f"{base}/files/corpus.zip?download=1",
        md5=md5(corpus_zip),
        progress=False,
    )
    assert out == target
    for name, data in MEMBERS.items():
        assert (target / name).read_bytes() == data
    cached = tmp_path / "cache" / "corpus.zip"
    assert cached.read_bytes() == corpus_zip
    assert not cached.with_suffix(".zip.part").exists()
    assert [r["range"] for r in state.requests] == [None]
    # nothing but the target is left next to it (no temporary extraction folder)
    assert sorted(p.name for p in target.parent.iterdir()) == ["ravdess"]

    # a second call finds the audio and does not touch the network
    assert download_corpus("RAVDESS", target, cache_dir=tmp_path / "cache", progress=False)
    assert len(state.requests) == 1


def test_download_corpus_without_md5_uses_cache(
    server: tuple[str, ServerState], corpus_zip: bytes, tmp_path: Path
) -> None:
    base, state = server
    state.files["/a.zip"] = corpus_zip
    kwargs = {"cache_dir": tmp_path / "cache", "url": f"{base}/a.zip", "progress": False}
    download_corpus("ravdess", tmp_path / "t1", **kwargs)
    download_corpus("ravdess", tmp_path / "t2", **kwargs)
    assert len(state.requests) == 1  # the cached archive was reused for the second target
    assert (tmp_path / "t2" / next(iter(MEMBERS))).is_file()


def test_resume_after_interrupted_download(
    server: tuple[str, ServerState], corpus_zip: bytes, tmp_path: Path
) -> None:
    base, state = server
    state.files["/c.zip"] = corpus_zip
    cut = len(corpus_zip) // 3
    state.cut_after = cut
    dest = tmp_path / "c.zip"
    url = f"{base}/c.zip"
    with pytest.raises(DownloadError, match="again") as excinfo:
        fetch(url, dest, md5=md5(corpus_zip), progress=False, chunk_size=4096, timeout=5)
    assert url in str(excinfo.value)
    part = tmp_path / "c.zip.part"
    assert part.stat().st_size == cut
    assert not dest.exists()

    out = fetch(url, dest, md5=md5(corpus_zip), size=len(corpus_zip), progress=False, timeout=5)
    assert out == dest
    assert dest.read_bytes() == corpus_zip
    assert not part.exists()
    assert [r["range"] for r in state.requests] == [None, f"bytes={cut}-"]
    assert state.sent == [(200, cut), (206, len(corpus_zip) - cut)]


def test_server_without_range_support_starts_over(
    server: tuple[str, ServerState], corpus_zip: bytes, tmp_path: Path
) -> None:
    base, state = server
    state.files["/c.zip"] = corpus_zip
    state.support_ranges = False
    part = tmp_path / "c.zip.part"
    part.write_bytes(b"garbage that must not survive")
    dest = fetch(f"{base}/c.zip", tmp_path / "c.zip", md5=md5(corpus_zip), progress=False)
    assert dest.read_bytes() == corpus_zip
    assert state.requests[0]["range"] == f"bytes={len(b'garbage that must not survive')}-"
    assert state.sent == [(200, len(corpus_zip))]


def test_416_with_complete_part_is_treated_as_done(
    server: tuple[str, ServerState], corpus_zip: bytes, tmp_path: Path
) -> None:
    base, state = server
    state.files["/c.zip"] = corpus_zip
    (tmp_path / "c.zip.part").write_bytes(corpus_zip)
    dest = fetch(f"{base}/c.zip", tmp_path / "c.zip", md5=md5(corpus_zip), progress=False)
    assert dest.read_bytes() == corpus_zip
    assert state.sent == [(416, 0)]


def test_complete_part_with_known_size_skips_network(
    server: tuple[str, ServerState], corpus_zip: bytes, tmp_path: Path
) -> None:
    base, state = server
    (tmp_path / "c.zip.part").write_bytes(corpus_zip)
    dest = fetch(
        f"{base}/c.zip",
        tmp_path / "c.zip",
        md5=md5(corpus_zip),
        size=len(corpus_zip),
        progress=False,
    )
    assert dest.read_bytes() == corpus_zip
    assert state.requests == []


def test_md5_mismatch_raises_and_leaves_nothing(
    server: tuple[str, ServerState], corpus_zip: bytes, tmp_path: Path
) -> None:
    base, state = server
    state.files["/c.zip"] = corpus_zip
    dest = tmp_path / "c.zip"
    with pytest.raises(DownloadError) as excinfo:
        fetch(f"{base}/c.zip", dest, md5="0" * 32, progress=False)
    message = str(excinfo.value)
    assert "0" * 32 in message and md5(corpus_zip) in message
    assert "expected" in message and "got" in message
    assert not dest.exists()
    assert not (tmp_path / "c.zip.part").exists()


def test_size_mismatch_raises(
    server: tuple[str, ServerState], corpus_zip: bytes, tmp_path: Path
) -> None:
    base, state = server
    state.files["/c.zip"] = corpus_zip
    dest = tmp_path / "c.zip"
    with pytest.raises(DownloadError, match=str(len(corpus_zip) + 10)):
        fetch(f"{base}/c.zip", dest, size=len(corpus_zip) + 10, progress=False)
    assert not dest.exists()


def test_existing_dest_skips_network(
    server: tuple[str, ServerState], corpus_zip: bytes, tmp_path: Path
) -> None:
    base, state = server
    dest = tmp_path / "c.zip"
    dest.write_bytes(corpus_zip)
    assert fetch(f"{base}/c.zip", dest, md5=md5(corpus_zip), progress=False) == dest
    assert fetch(f"{base}/c.zip", dest, progress=False) == dest
    assert state.requests == []


def test_existing_dest_with_wrong_md5_is_downloaded_again(
    server: tuple[str, ServerState], corpus_zip: bytes, tmp_path: Path
) -> None:
    base, state = server
    state.files["/c.zip"] = corpus_zip
    dest = tmp_path / "c.zip"
    dest.write_bytes(b"stale")
    fetch(f"{base}/c.zip", dest, md5=md5(corpus_zip), progress=False)
    assert dest.read_bytes() == corpus_zip
    assert len(state.requests) == 1


def test_http_404_names_url(server: tuple[str, ServerState], tmp_path: Path) -> None:
    base, _ = server
    url = f"{base}/missing.zip"
    with pytest.raises(DownloadError, match="404") as excinfo:
        fetch(url, tmp_path / "m.zip", progress=False)
    assert url in str(excinfo.value)
    assert "again" not in str(excinfo.value)  # nothing arrived: no partial download to resume
    assert "make run RAVDESS=" in str(excinfo.value) and "--data.root" in str(excinfo.value)
    assert not (tmp_path / "m.zip").exists()


def test_connection_refused_names_url(tmp_path: Path) -> None:
    # bind a port, then close it, so nothing listens there
    probe = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = probe.server_address[1]
    probe.server_close()
    url = f"http://127.0.0.1:{port}/x.zip"
    with pytest.raises(DownloadError, match="RAVDESS=/path") as excinfo:
        fetch(url, tmp_path / "x.zip", progress=False, timeout=5)
    assert url in str(excinfo.value) and "resume" not in str(excinfo.value)


def test_download_corpus_rejects_non_zip(server: tuple[str, ServerState], tmp_path: Path) -> None:
    base, state = server
    state.files["/bad.zip"] = b"this is not a zip file" * 10
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match="not a valid zip"):
        download_corpus(
            "ravdess", tmp_path / "t", cache_dir=cache, url=f"{base}/bad.zip", progress=False
        )
    assert not (cache / "bad.zip").exists()  # removed so the next run downloads afresh
    assert not (tmp_path / "t").exists()


def test_unknown_corpus_lists_known(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="ravdess") as excinfo:
        download_corpus("iemocap", tmp_path / "t", cache_dir=tmp_path / "cache", progress=False)
    assert "iemocap" in str(excinfo.value)
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("option", ["TARGET", "--cache-dir"])
def test_a_file_where_a_folder_goes_is_refused_before_downloading(tmp_path, option) -> None:
    from lightning_ser.tools import download_command

    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    argv = ["ravdess", str(a_file)] if option == "TARGET" else ["ravdess", str(tmp_path / "t")]
    argv += ["--cache-dir", str(a_file)] if option == "--cache-dir" else []
    with pytest.raises(ValueError, match=f"{option} .*notes.txt is a file; name a folder"):
        download_command([*argv, "--url", "http://127.0.0.1:9/never-contacted.zip"])


# ------------------------------------------------------------------------------------------
# safe_extract
# ------------------------------------------------------------------------------------------


def _write_zip(path: Path, infos: list[tuple[zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for info, data in infos:
            zf.writestr(info, data)
    return path


@pytest.mark.parametrize(
    ("bad_name", "reason"),
    [
        ("../evil.txt", "'..'"),
        ("Actor_01/../../evil.txt", "'..'"),
        ("/tmp/lightning_ser_evil.txt", "absolute"),
        ("C:/evil.txt", "absolute"),
    ],
)
def test_zip_slip_is_refused(tmp_path: Path, bad_name: str, reason: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    zip_path = _write_zip(
        tmp_path / "evil.zip",
        [
            (zipfile.ZipInfo("Actor_01/03-01-01-01-01-01-01.wav"), b"ok"),
            (zipfile.ZipInfo(bad_name), b"pwned"),
        ],
    )
    target = work / "out"
    with pytest.raises(DownloadError, match=re.escape(repr(bad_name))) as excinfo:
        safe_extract(zip_path, target)
    assert reason in str(excinfo.value)
    assert not target.exists()
    assert list(work.iterdir()) == []  # temporary folder removed, nothing written
    assert not (tmp_path / "evil.txt").exists()
    assert not Path("/tmp/lightning_ser_evil.txt").exists()


def test_symlink_member_is_refused(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("Actor_01/link")
    link.external_attr = 0o120777 << 16
    zip_path = _write_zip(tmp_path / "link.zip", [(link, b"/etc/passwd")])
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(DownloadError, match="symbolic link"):
        safe_extract(zip_path, work / "out")
    assert list(work.iterdir()) == []


def test_non_empty_target_is_refused(tmp_path: Path, corpus_zip: bytes) -> None:
    zip_path = tmp_path / "c.zip"
    zip_path.write_bytes(corpus_zip)
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(DownloadError, match="not empty"):
        safe_extract(zip_path, target)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.zip", "out"]


def test_empty_target_is_filled(tmp_path: Path) -> None:
    zip_path = tmp_path / "c.zip"
    zip_path.write_bytes(make_zip(MEMBERS, compress=True))
    target = tmp_path / "out"
    target.mkdir()
    assert safe_extract(zip_path, target) == target
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*.wav")) == sorted(MEMBERS)


def test_corrupt_zip_leaves_target_untouched(tmp_path: Path) -> None:
    data = bytearray(make_zip({"Actor_01/a.wav": b"x" * 5000}))
    data[100:200] = b"\xff" * 100  # corrupt the stored member's bytes -> CRC error
    zip_path = tmp_path / "c.zip"
    zip_path.write_bytes(bytes(data))
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(DownloadError, match="c.zip"):
        safe_extract(zip_path, work / "out")
    assert list(work.iterdir()) == []
