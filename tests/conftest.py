"""Shared fixtures: the loopback fixture site, one real Chromium, temp data folders."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tests.fakes import FakeTelegram
from tests.fakes.tsa import OPENSSL, local_tsa
from watcher.app import App
from watcher.capture.browser import Browser
from watcher.demo.site import DemoSite
from watcher.watchlist import Watchlist, load_watchlist

SHOP_SELECTORS = """
    selectors:
      post: .listing
      id: "@data-id"
      text: .desc
      time: time@datetime
      images: .photos img@src
      link: a.permalink@href
      author: .seller
"""


def watcher(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str | None] | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """Run the real command line, ``python -m watcher ARGS``, to the end; text output.

    ``env`` sets variables on top of this process's environment (None removes one).
    """
    merged = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "watcher", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={k: v for k, v in merged.items() if v is not None},
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def site() -> Iterator[DemoSite]:
    """A fresh fixture site on 127.0.0.1 with a random port."""
    with DemoSite() as running:
        yield running


@pytest.fixture
def fake_telegram() -> Iterator[FakeTelegram]:
    """A fake Telegram Bot API server on 127.0.0.1."""
    with FakeTelegram() as fake:
        yield fake


def alerts_yaml(*chat_ids: int) -> str:
    """An ``alerts:`` block sending to ``chat_ids``."""
    return f"alerts:\n  telegram:\n    chat_ids: [{', '.join(map(str, chat_ids))}]\n"


@pytest.fixture(scope="session")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(URL, CA certificate path) of a local RFC 3161 timestamp authority."""
    if OPENSSL is None:
        pytest.skip("the openssl program is not installed; cannot run a local TSA")
    with local_tsa(tmp_path_factory.mktemp("tsa")) as authority:
        yield authority


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One real Chromium shared by the whole test run (a fresh context per capture)."""
    # Contexts opened directly (not by a target) may reach the loopback fixture site.
    shared = Browser(max_concurrent=2, allow_private_network=True)
    await shared.start()
    yield shared
    await shared.close()


@pytest.fixture
def write_watchlist(tmp_path: Path) -> Callable[[str], Path]:
    """Write a watchlist (dedented YAML) into the test's folder and return its path."""

    def write(text: str, name: str = "watchlist.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


# The fixture site is on 127.0.0.1: its targets must say they may reach a private address.
PRIVATE_OK = "    allow_private_network: true\n"


def channel_target(name: str, url: str, extra: str = "") -> str:
    """YAML for a telegram target (on the loopback fixture site)."""
    return (
        f"  - name: {name}\n    platform: telegram\n    url: {url}\n    every: 5s\n"
        f"{PRIVATE_OK}{extra}"
    )


def checked_channel(site: DemoSite, folder: Path, text: str = "one") -> None:
    """``folder`` watches the fixture site's channel ``dealer`` (one post saying ``text``),
    captured once by ``watcher check``."""
    site.channel("dealer")
    site.add_post("dealer", text)
    (folder / "watchlist.yaml").write_text(
        "targets:\n" + channel_target("dealer", f"{site.base_url}/s/dealer")
    )
    checked = watcher("check", cwd=folder)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def exported_channel(site: DemoSite, folder: Path) -> Path:
    """:func:`checked_channel`, then ``watcher export --target dealer``: the one bundle."""
    checked_channel(site, folder)
    exported = watcher("export", "--target", "dealer", "--out", "bundles", cwd=folder)
    assert exported.returncode == 0, exported.stderr
    (bundle,) = (folder / "bundles").glob("*.zip")
    return bundle


def shop_target(name: str, url: str) -> str:
    """YAML for a generic shop target with the fixture site's selectors."""
    return (
        f"  - name: {name}\n    platform: generic\n    url: {url}\n    every: 5s\n{PRIVATE_OK}"
        + (textwrap.indent(textwrap.dedent(SHOP_SELECTORS), "    "))
    )


@pytest.fixture
async def make_app(tmp_path: Path, browser: Browser) -> AsyncIterator[Callable[..., App]]:
    """Build an App over a temp data folder from target YAML snippets."""
    apps: list[App] = []

    def make(*targets: str, data: str = "data", header: str = "") -> App:
        path = tmp_path / "watchlist.yaml"
        path.write_text(header + "targets:\n" + "".join(targets), encoding="utf-8")
        watchlist: Watchlist = load_watchlist(path)
        app = App.open(watchlist, tmp_path / data, browser=browser)
        apps.append(app)
        return app

    yield make
    for app in apps:
        await app.close()
