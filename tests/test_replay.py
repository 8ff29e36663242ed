"""Exported web archives open in ReplayWeb.page, deduplicated captures included.

The player comes from the npm registry (``make replay``); without it the test skips and says
how to get it. The fixture site is stopped before replay, so every word and photo on the
replayed page comes out of the WACZ.
"""

from __future__ import annotations

import os
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests import replayweb
from tests.conftest import channel_target
from watcher.demo.site import DemoSite
from watcher.evidence.bundle import Selection, export_bundle
from watcher.evidence.replay import revisit_count
from watcher.pipeline import run_capture

SCREENSHOT = replayweb.REPO / "docs" / "screenshots" / "replay.png"


@pytest.fixture(scope="module")
def player() -> Path:
    folder = replayweb.assets()
    if folder is None:
        pytest.skip(
            "ReplayWeb.page is not fetched: run `make replay` (needs npm and the npm "
            "registry; Debian: apt-get install -y npm)"
        )
    return folder


async def test_exported_archives_replay_in_replaywebpage(player, make_app, tmp_path):
    with DemoSite() as site:
        site.channel("dealer", title="Ivory Dealer KH")
        for n in range(3):
            photos = [site.add_photo(f"p{n}{i}", seed=300 + 10 * n + i) for i in range(2)]
            site.add_post("dealer", f"old stock lot {n}: carved bangle, inbox", images=photos)
        url = f"{site.base_url}/s/dealer"
        app = make_app(channel_target("dealer", url))
        target = app.watchlist.target("dealer")
        first = await run_capture(app, target)
        site.add_post(
            "dealer", "NEW: ivory chopsticks 象牙筷子, 3 pairs", images=[site.add_photo("n", 9)]
        )
        second = await run_capture(app, target)
    bundles = export_bundle(app, Selection(target="dealer"), tmp_path / "out")
    with zipfile.ZipFile(bundles[0]) as bundle:
        archives = {
            capture.capture_id: (
                bundle.read(f"captures/{capture.capture_id}/archive.wacz"),
                bundle.read(f"captures/{capture.capture_id}/archive-as-collected.wacz"),
            )
            for capture in (first, second)
        }
    whole, collected = archives[second.capture_id]
    assert revisit_count(collected) >= 7  # its 7 photos and the screenshot were archived

    for capture_id, (whole, _collected) in archives.items():
        seen = await replayweb.replay(whole, url, player)
        assert "old stock lot 0: carved bangle" in seen.text, capture_id
        assert seen.photos_loaded >= (6 if capture_id == first.capture_id else 7), seen
        # The player shows the original addresses; the site behind them is gone.
        assert all(src.startswith(site.base_url) for src in seen.photo_sources)
    with pytest.raises(OSError):
        urllib.request.urlopen(seen.photo_sources[0], timeout=5)
    assert "NEW: ivory chopsticks 象牙筷子" in seen.text
    shot = tmp_path / "replay.png"
    shot.write_bytes(seen.screenshot)
    if os.environ.get("WATCHER_UPDATE_SCREENSHOTS"):
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        SCREENSHOT.write_bytes(seen.screenshot)

    # Opened alone, the collected archive of the second capture lacks its revisited photos:
    # what the export's whole copy is for.
    alone = await replayweb.replay(collected, url, player)
    assert "NEW: ivory chopsticks" in alone.text
    assert alone.photos_loaded == 0, alone.photo_sources
