"""Helpers for the reliability suite: hostile pages on the fixture site, containment checks."""

from __future__ import annotations

import html
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from watcher.capture import page as page_module

SHOP_SELECTORS = """\
selectors:
  post: .listing
  id: "@data-id"
  text: .desc
  images: .photos img@src
"""


def hostile_target(
    name: str, url: str, timeout: float = 8, extra: str = "", private_ok: bool = True
) -> str:
    """YAML for a generic listing target with a short time budget (hostile pages must be cut);
    ``private_ok``: it may reach the loopback fixture site (``allow_private_network``)."""
    body = f"platform: generic\nurl: {url}\nevery: 5s\njitter: 0s\ntimeout: {timeout:g}s\n"
    body += "allow_private_network: true\n" if private_ok else ""
    body += SHOP_SELECTORS + extra
    return f"  - name: {name}\n" + textwrap.indent(body, "    ")


def listing(post_id: str, text: str, images: tuple[str, ...] = (), escape: bool = True) -> str:
    """One `.listing` post; ``escape=False`` lets a test put raw (hostile) markup in."""
    shown = html.escape(text) if escape else text
    pid = html.escape(post_id, quote=True) if escape else post_id
    imgs = "".join(f'<img src="{html.escape(src, quote=True)}">' for src in images)
    return (
        f'<div class="listing" data-id="{pid}"><p class="desc">{shown}</p>'
        f'<div class="photos">{imgs}</div></div>'
    )


def shop_page(*listings: str, head: str = "", tail: str = "") -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'>{head}</head><body>"
        f"{''.join(listings)}{tail}</body></html>"
    )


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def assert_contained(data: Path, before_outside: set[Path], outside_root: Path) -> None:
    """Nothing written outside the data folder (beside it in the test's folder), no links out."""
    for path in files_under(data):
        assert not path.is_symlink(), f"symlink in the data folder: {path}"
        assert path.resolve().is_relative_to(data.resolve()), path
    created = files_under(outside_root) - before_outside
    strays = [p for p in created if not p.is_relative_to(data)]
    assert not strays, f"files written outside the data folder: {strays}"


@pytest.fixture
def fast_pace(monkeypatch: pytest.MonkeyPatch) -> None:
    """No human pauses between scrolls: hostile-page tests measure bounds, not manners."""
    monkeypatch.setattr(page_module, "PACE", (0.0, 0.02))
    monkeypatch.setattr(page_module, "GROWTH_WAIT_S", 1.0)


@pytest.fixture
def chromium_pids() -> Iterator[callable]:
    """A function listing the pids of this process's Chromium children (from /proc)."""

    def pids() -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmd = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if "chrom" in os.path.basename(cmd) and _descends_from(ppid, os.getpid()):
                found.append(int(entry.name))
        return found

    yield pids


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return False
