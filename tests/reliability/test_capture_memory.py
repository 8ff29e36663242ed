"""A page of huge photos does not take the capture's memory with it (issue 19, item 7).

25 photos of 40 MB each once took the process from 153 MB to 1.3 GB: every body was held in
memory. The capture runs here in a child process, as `watcher check`, against a loopback
server that makes its photos up as it sends them (so this test's own memory stays small),
and the child reports its peak resident memory at exit.

The peak is read from ``VmHWM`` in ``/proc/self/status``, not ``ru_maxrss``: Linux carries a
process's ``ru_maxrss`` over from the parent it was forked from (the pages it shared before
``exec``), so a child of a large test process reports the test's size, not its own.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

MB = 1024 * 1024
CHILD = textwrap.dedent(
    """
    import sys
    from watcher.cli import main
    code = main(sys.argv[1:])
    peak = [l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
    print("PEAK_KB", peak, flush=True)
    sys.exit(code)
    """
)
# 600 MB of photos on one page, shown (the browser loads them and the web archive's recorder
# keeps what fits under its cap) or only linked (downloaded by watcher, streamed to disk).
PHOTOS, PHOTO_MB = 25, 24


class _PhotoServer(ThreadingHTTPServer):
    daemon_threads = True
    block = os.urandom(MB)  # photos are this block repeated: incompressible, made on the fly


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/img/"):
            n, mb = self.path.removeprefix("/img/").removesuffix(".jpg").split("-")
            return self._photo(int(n), int(mb))
        big = self.path != "/small"
        items = []
        for n in range(PHOTOS if big else 1):
            src = f"/img/{n}-{PHOTO_MB if big else 1}.jpg"
            shown = self.path != "/linked"
            items.append(
                f'<img class="photo" src="{src}" data-photo="{src}">'
                if shown
                else f'<a class="photo" href="{src}" data-photo="{src}">photo {n}</a>'
            )
        html = (
            "<!doctype html><html><body><div class='listing' data-id='a'>"
            f"<p class='desc'>ivory</p><div class='photos'>{''.join(items)}</div></div>"
            "</body></html>"
        ).encode()
        self._send(html, "text/html; charset=utf-8")

    def _photo(self, n: int, mb: int) -> None:
        size = mb * MB
        head = b"\xff\xd8\xff\xe0" + n.to_bytes(4, "big")  # a JPEG's start; distinct per photo
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(head) + size))
        self.end_headers()
        try:
            self.wfile.write(head)
            for _ in range(size // MB):
                self.wfile.write(_PhotoServer.block)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the capture stopped reading (budget, cap): fine

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def photo_server() -> Iterator[str]:
    server = _PhotoServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def capture_in_child(tmp_path: Path, url: str, name: str) -> tuple[int, Path]:
    """Run `watcher check` on ``url`` in a child process; (peak resident MB, data folder)."""
    watchlist = tmp_path / f"{name}.yaml"
    watchlist.write_text(
        textwrap.dedent(
            f"""\
            targets:
              - name: {name}
                platform: generic
                url: {url}
                allow_private_network: true
                timeout: 120s
                selectors:
                  post: .listing
                  id: "@data-id"
                  text: .desc
                  images: .photos .photo@data-photo
            """
        ),
        encoding="utf-8",
    )
    data = tmp_path / f"data-{name}"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, "check", "--watchlist", str(watchlist), "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[2],
        # A budget that lets every photo in: the point is where their bytes go, not the cut.
        env=os.environ | {"WATCHER_IMAGE_BUDGET_MB": "1000"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    peak = [line for line in done.stdout.splitlines() if line.startswith("PEAK_KB")]
    assert peak, done.stdout
    return int(peak[0].split()[1]) // 1024, data


def stored_photos(data: Path) -> list[int]:
    with sqlite3.connect(data / "watcher.db") as db:
        return [size for (size,) in db.execute("SELECT size FROM images WHERE sha256 IS NOT NULL")]


def test_linked_photos_are_streamed_not_held(photo_server, tmp_path) -> None:
    """Photos watcher downloads itself go to disk as they arrive: 600 MB of them cost the
    capture less than three of them would if held whole (measured: +24 MB over a capture of
    one 1 MB photo; 600 MB held whole would be +600 MB)."""
    baseline, _ = capture_in_child(tmp_path, f"{photo_server}/small", "small")
    peak, data = capture_in_child(tmp_path, f"{photo_server}/linked", "linked")
    stored = stored_photos(data)
    assert len(stored) == PHOTOS and sum(stored) > PHOTOS * PHOTO_MB * MB, stored
    assert peak < baseline + PHOTO_MB * 3, (peak, baseline)


def test_shown_photos_stay_within_the_issues_bound(photo_server, tmp_path) -> None:
    """Photos the page shows are recorded for the web archive (up to the recorder's cap);
    since the archive writes a payload the blob store holds as a revisit record, the WARC
    and WACZ no longer hold them a second and third time (it was +597 MB for these 600 MB,
    measured before revisits)."""
    baseline, _ = capture_in_child(tmp_path, f"{photo_server}/small", "small")
    peak, data = capture_in_child(tmp_path, f"{photo_server}/shown", "shown")
    assert len(stored_photos(data)) == PHOTOS
    assert peak < baseline + 400, (peak, baseline)
