"""The bundled demo: a dealer's channel and a reposting shop that change on every step.

``build_demo_site()`` starts the site with its first posts; :class:`DemoScenario` then applies
one scripted change per :meth:`DemoScenario.step` (new post, edit, repost of a photo on the
shop, deletion, unrelated listing, ... forever), so a watcher pointed at it sees every kind of
event. Everything is deterministic for a given seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from watcher.demo.site import DemoSite

DEMO_PORT = 8765
CHANNEL = "ivory_dealer_kh"
CHANNEL_TITLE = "Antique Carvings KH"
SHOP = "lucky_charms_store"
SHOP_TITLE = "Lucky Charms Store"
# The pages the demo serves: a watchlist target on the demo site's host reading one of
# these is a demo target (see watcher.demo.runner).
DEMO_PATHS = (f"/s/{CHANNEL}", f"/shop/{SHOP}")
REPOST_STYLE = {"scale": 0.6, "quality": 70, "crop": 0.04, "watermark": "lucky"}

_START = datetime(2026, 11, 20, 2, 15, 0, tzinfo=UTC)

# (text, photo seeds, author)
_CHANNEL_POSTS: list[tuple[str, tuple[int, ...], str | None]] = [
    ("សួស្តី! ហាងយើងបើកហើយ។ ចម្លាក់ឈើ និងវត្ថុបុរាណ។\nWelcome! Wood carvings and antiques.", (), None),
    ("White gold bangle, old stock, very smooth 🤍\nតម្លៃពិសេស DM only", (101,), None),
    ("象牙 手镯 老料 包真 📿 私聊\nShip to Hanoi / Guangzhou", (102, 103), "Dara"),
    ("Mèo may mắn gốm sứ, giao hàng toàn quốc.\nCeramic lucky cats, 20 USD", (104,), None),
    (
        "Có sừng tê giác nguyên chiếc, hàng hiếm. Inbox giá.\nhttps://example.org/price",
        (105,),
        None,
    ),
    ("ចម្លាក់ភ្លុក ព្រះពុទ្ធ (ivory carving) 12cm, certificate available", (106,), "Dara"),
]

_SHOP_LISTINGS: list[tuple[str, tuple[int, ...]]] = [
    ("Lucky cat figurine (ceramic)\nHand painted, 15 cm. Brings fortune to your shop.", (201,)),
    ("Jade pendant 翡翠 平安扣\nNatural A-grade jade, with box.", (202,)),
    ("Bracelet 'white gold' beads\nRare old material, creamy colour, 14 mm beads.", (203, 204)),
    ("Buddha amulet, bronze\nTemple blessed, Thailand.", (205,)),
]

_NEW_POST_TEXTS = [
    "Hàng mới về: vòng tay ngà voi, bảo hành trọn đời. Inbox!",
    "New arrival: white gold carving, 1.2 kg. Serious buyers only.",
    "犀角 杯 一只, 老货, 价格私聊 🔥",
    "ថ្មីៗ៖ ខ្សែដៃ ភ្លុកដំរី ពណ៌ស។ Delivery Phnom Penh.",
    "Pangolin scales (vảy tê tê) 1 kg available, medicine grade.",
]
_EDIT_SUFFIXES = [
    "\n❌ SOLD",
    "\nPrice reduced, contact @dara_kh",
    "\n已售 / đã bán",
    "\nUpdated: more pieces in stock",
]
_REPOST_TEXTS = [
    "Vintage bangle, creamy white\nFrom a private collection, certificate included.",
    "Carved pendant 'bone'\nAntique style, limited stock. Fast shipping.",
    "Bracelet, natural material\nOld piece, very smooth. Ask for more photos.",
]
_PLAIN_TEXTS = [
    "Wooden elephant statue\nTeak wood, hand carved in Siem Reap, 30 cm.",
    "Red string bracelet\nFeng shui, pack of 10.",
    "Brass lucky coins 招财\nSet of 6, gift box.",
    "Incense holder (ceramic)\nLotus shape, 12 cm.",
]


def build_demo_site(port: int = DEMO_PORT) -> DemoSite:
    """A started :class:`DemoSite` with the dealer channel and the shop already populated."""
    site = DemoSite(port=port).start()
    try:
        populate(site)
    except Exception:
        site.stop()
        raise
    return site


def populate(site: DemoSite) -> None:
    """Create the demo channel and shop with their initial posts and photos."""
    site.channel(CHANNEL, CHANNEL_TITLE)
    site.shop(SHOP, SHOP_TITLE)
    for index, (text, seeds, author) in enumerate(_CHANNEL_POSTS):
        keys = [site_photo(site, "tg", seed) for seed in seeds]
        posted = _START + timedelta(hours=7 * index, minutes=13 * index)
        site.add_post(CHANNEL, text, images=keys, author=author, posted_at=posted.isoformat())
    for index, (text, seeds) in enumerate(_SHOP_LISTINGS):
        keys = [site_photo(site, "shop", seed) for seed in seeds]
        posted = _START + timedelta(hours=9 * index + 3)
        site.add_post(SHOP, text, images=keys, posted_at=posted.isoformat())


def site_photo(site: DemoSite, prefix: str, seed: int, **variant_kwargs: object) -> str:
    """Serve the photo for ``seed`` under ``<prefix>-<seed>.jpg``; returns the key."""
    key = f"{prefix}-{seed}.jpg"
    site.add_photo(key, seed, **variant_kwargs)
    return key


class DemoScenario:
    """Drives the demo site: every :meth:`step` applies the next scripted change."""

    def __init__(self, site: DemoSite, seed: int = 7) -> None:
        self.site = site
        self.seed = seed
        self.steps_taken = 0
        self._rng = random.Random(seed)
        self._clock = _START + timedelta(days=2)
        self._last_photo: int | None = None
        self._photo_counter = 0
        self._actions: list[Callable[[int], str]] = [
            self._new_channel_post,
            self._edit_channel_post,
            self._repost_on_shop,
            self._delete_channel_post,
            self._plain_shop_listing,
        ]
        site.channel(CHANNEL)
        site.shop(SHOP)

    def step(self) -> str:
        """Apply the next change and describe it in one line."""
        round_number, position = divmod(self.steps_taken, len(self._actions))
        self.steps_taken += 1
        self._clock += timedelta(minutes=self._rng.randint(5, 95))
        return self._actions[position](round_number)

    # -- the scripted changes ------------------------------------------------------------
    def _new_channel_post(self, round_number: int) -> str:
        seed = self._new_seed()
        key = site_photo(self.site, "tg", seed)
        text = _NEW_POST_TEXTS[round_number % len(_NEW_POST_TEXTS)]
        post_id = self.site.add_post(CHANNEL, text, images=[key], posted_at=self._now())
        self._last_photo = seed
        return f"new post {CHANNEL}/{post_id} with a new photo ({key})"

    def _edit_channel_post(self, round_number: int) -> str:
        posts = self.site.posts(CHANNEL)
        if not posts:
            return self._new_channel_post(round_number)
        post = posts[max(0, len(posts) - 3)]  # an older post, not the newest
        suffix = _EDIT_SUFFIXES[round_number % len(_EDIT_SUFFIXES)]
        self.site.edit_post(CHANNEL, post.id, text=post.text + suffix)
        return f"edited {CHANNEL}/{post.id} (added {suffix.strip()!r})"

    def _repost_on_shop(self, round_number: int) -> str:
        if self._last_photo is None:
            self._last_photo = self._new_seed()
            site_photo(self.site, "tg", self._last_photo)
        seed = self._last_photo
        key = site_photo(self.site, "shop-repost", seed, **REPOST_STYLE)
        text = _REPOST_TEXTS[round_number % len(_REPOST_TEXTS)]
        post_id = self.site.add_post(SHOP, text, images=[key], posted_at=self._now())
        return (
            f"new listing {SHOP} L{1000 + post_id} reposts the channel photo "
            f"tg-{seed}.jpg (smaller, recompressed, cropped, watermarked)"
        )

    def _delete_channel_post(self, round_number: int) -> str:
        posts = self.site.posts(CHANNEL)
        if len(posts) < 2:
            return self._new_channel_post(round_number)
        # A middle post: watcher reports a deletion only when newer and older posts remain,
        # since the oldest post may simply have scrolled out of the page it reads.
        post = posts[len(posts) // 2]
        self.site.delete_post(CHANNEL, post.id)
        return f"deleted {CHANNEL}/{post.id}"

    def _plain_shop_listing(self, round_number: int) -> str:
        seed = self._new_seed()
        key = site_photo(self.site, "shop", seed)
        text = _PLAIN_TEXTS[round_number % len(_PLAIN_TEXTS)]
        post_id = self.site.add_post(SHOP, text, images=[key], posted_at=self._now())
        return f"new listing {SHOP} L{1000 + post_id} with an unrelated photo ({key})"

    # -- helpers -----------------------------------------------------------------------------
    def _new_seed(self) -> int:
        """A photo seed never used by the initial content or earlier steps."""
        self._photo_counter += 1
        return 10_000 + self.seed * 1_000 + self._photo_counter

    def _now(self) -> str:
        return self._clock.isoformat()
