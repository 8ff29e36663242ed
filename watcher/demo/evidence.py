"""A realistic little case on the demo site, for the report's tests and its screenshots in docs/.

:func:`collect_demo_case` captures the demo channel and shop a few times while the scenario
changes them: a new post, an edit, a photo reposted by the shop, a deletion, a post hidden
and shown again, and the dealer's handle turning up on the shop. Everything runs on loopback.
"""

from __future__ import annotations

from pathlib import Path

from watcher.app import App
from watcher.capture.browser import Browser
from watcher.demo.scenario import CHANNEL, SHOP, DemoScenario, populate
from watcher.demo.site import DemoSite
from watcher.pipeline import run_capture
from watcher.watchlist import load_watchlist

CHANNEL_TARGET = "ivory-dealer-kh"
SHOP_TARGET = "lucky-charms-store"
OPERATOR = "FA rapid-rescue desk (demo)"

_WATCHLIST = """\
operator: "{operator}"
targets:
  - name: {channel_target}
    platform: telegram
    url: {base}/s/{channel}
    every: 5m
    tags: [case-17]
    allow_private_network: true
  - name: {shop_target}
    platform: generic
    url: {base}/shop/{shop}
    every: 5m
    tags: [case-17]
    allow_private_network: true
    selectors:
      post: .listing
      id: "@data-id"
      text: .desc
      time: time@datetime
      images: .photos img@src
      link: a.permalink@href
      author: .seller
"""


def demo_case_app(site: DemoSite, folder: Path, browser: Browser | None = None) -> App:
    """An App over ``folder`` watching the demo channel and shop served by ``site``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "watchlist.yaml"
    path.write_text(
        _WATCHLIST.format(
            operator=OPERATOR,
            base=site.base_url,
            channel=CHANNEL,
            shop=SHOP,
            channel_target=CHANNEL_TARGET,
            shop_target=SHOP_TARGET,
        ),
        encoding="utf-8",
    )
    return App.open(load_watchlist(path), folder / "data", browser=browser)


async def collect_demo_case(site: DemoSite, app: App) -> list[str]:
    """Populate ``site`` and capture it through one round of every scripted change, a post
    hidden and shown again, and a shared contact; returns what changed, step by step."""
    populate(site)
    scenario = DemoScenario(site)
    channel, shop = app.watchlist.target(CHANNEL_TARGET), app.watchlist.target(SHOP_TARGET)
    await run_capture(app, channel)
    await run_capture(app, shop)
    done = []
    for _ in range(5):  # new post, edit, repost on the shop, deletion, unrelated listing
        done.append(scenario.step())
        await run_capture(app, channel)
        await run_capture(app, shop)
    # A dealer hides a post and shows it again once the buyer has seen it.
    hidden = site.posts(CHANNEL)[1]
    site.delete_post(CHANNEL, hidden.id)
    await run_capture(app, channel)
    site.show_post(CHANNEL, hidden)
    done.append(f"hid and showed again {CHANNEL}/{hidden.id}")
    # The front man's shop gives the dealer's own handle.
    older = site.posts(CHANNEL)[2]
    site.edit_post(CHANNEL, older.id, text=f"{older.text}\nMore in stock, Telegram @dara_kh")
    site.add_post(SHOP, "Old bracelet, creamy colour\nPrice on tg @dara_kh")
    done.append("the dealer's handle @dara_kh on the channel and on the shop")
    await run_capture(app, channel)
    await run_capture(app, shop)
    return done
