"""The running app: the loaded watchlist and the long-lived parts every command shares."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from watcher.capture.browser import Browser
from watcher.capture.polite import HostGates
from watcher.capture.pool import BrowserPool, configured_endpoints
from watcher.capture.sessions import SessionLocks, SessionStore
from watcher.capture.tgapi.accounts import TelegramAccounts
from watcher.detect.images import ImageIndex
from watcher.detect.keywords import KeywordMatcher, Lexicon
from watcher.detect.known import KnownImage, load_known_images
from watcher.store.blobs import BlobStore
from watcher.store.custody import WACZ_KEY_ANNOUNCED, CustodyLog
from watcher.store.db import Store
from watcher.store.keys import SigningKey, WaczSigningKey
from watcher.store.links import load_image_index
from watcher.watchlist import Watchlist

DB_NAME = "watcher.db"
CUSTODY_KEY_NAME = "custody-ed25519.pem"
WACZ_KEY_NAME = "wacz-ecdsa-p384.pem"
# Light checks allowed at once per full-capture slot (see App.check_browser).
CHECKS_PER_CAPTURE_SLOT = 2


def build_matcher(watchlist: Watchlist) -> KeywordMatcher:
    """A keyword matcher from the watchlist's groups and lexicon files (paths beside it)."""
    return KeywordMatcher(Lexicon.load(watchlist.keywords, watchlist.lexicons, watchlist.folder()))


def resolve_data_dir(watchlist_path: Path, data_arg: str | None) -> Path:
    """``--data`` wins, then ``WATCHER_DATA``, then ``data/`` beside the watchlist."""
    chosen = data_arg or os.environ.get("WATCHER_DATA")
    if chosen:
        return Path(chosen).expanduser().resolve()
    return watchlist_path.expanduser().resolve().parent / "data"


@dataclass
class App:
    """Everything a capture needs. One per process; closed on exit."""

    watchlist: Watchlist
    data_dir: Path
    store: Store
    blobs: BlobStore
    browser: Browser | BrowserPool
    sessions: SessionStore | None = None
    session_locks: SessionLocks | None = None
    owns_browser: bool = True
    _images: ImageIndex | None = field(default=None, repr=False)
    _custody: CustodyLog | None = field(default=None, repr=False)
    _wacz_key: WaczSigningKey | None = field(default=None, repr=False)
    _keywords: KeywordMatcher | None = field(default=None, repr=False)
    _known: list[KnownImage] | None = field(default=None, repr=False)
    _check_browser: Browser | BrowserPool | None = field(default=None, repr=False)
    _telegram: TelegramAccounts | None = field(default=None, repr=False)
    _hosts: HostGates | None = field(default=None, repr=False)

    @classmethod
    def open(
        cls,
        watchlist: Watchlist,
        data_dir: Path,
        max_concurrent: int | None = None,
        browser: Browser | None = None,
    ) -> App:
        """Open (creating if needed) the data folder; the browser starts on first capture.

        Pages at once: ``max_concurrent``, else the watchlist's. Pass ``browser`` to share one
        already running (it is then not closed with the app). With remote browsers listed
        (``browsers:`` or ``WATCHER_BROWSERS``), captures go to them instead, as many at
        once as they have slots.
        """
        max_concurrent = max_concurrent or watchlist.max_concurrent
        if browser is None:
            endpoints = configured_endpoints(watchlist)
            browser = BrowserPool(endpoints) if endpoints else Browser(max_concurrent)
            owns = True
        else:
            owns = False
        store = Store(data_dir / DB_NAME)
        return cls(
            watchlist=watchlist,
            data_dir=data_dir,
            store=store,
            blobs=BlobStore(data_dir / "blobs"),
            browser=browser,
            sessions=SessionStore(data_dir),
            session_locks=SessionLocks(data_dir / "sessions"),
            owns_browser=owns,
        )

    @property
    def check_browser(self) -> Browser | BrowserPool:
        """The light checks' Chromium (no images), started on the first check.

        A check is mostly waiting for the page to settle and costs a fraction of a full
        capture's CPU and memory, so it may run twice ``max_concurrent`` pages at once.
        Anonymous checks reuse contexts (cookies cleared): a new context was most of a
        check's cost.
        """
        if self._check_browser is None and isinstance(self.browser, BrowserPool):
            self._check_browser = self.browser.for_checks()
        if self._check_browser is None:
            self._check_browser = Browser(
                max_concurrent=CHECKS_PER_CAPTURE_SLOT * self.browser.max_concurrent,
                executable=self.browser.executable,
                recycle_after=self.browser.recycle_after,
                images=False,
                reuse_contexts=True,
            )
        return self._check_browser

    @property
    def telegram(self) -> TelegramAccounts:
        """Telegram accounts read through (pacing, pauses, stops; Telethon on first use)."""
        if self._telegram is None:
            self._telegram = TelegramAccounts(self.data_dir)
        return self._telegram

    @property
    def hosts(self) -> HostGates:
        """The per-host gates every page load asks first (limits from the watchlist's
        ``hosts:``, kept up to date across reloads; a host's Retry-After survives them)."""
        if self._hosts is None:
            self._hosts = HostGates()
        self._hosts.configure(self.watchlist.host_limits())
        return self._hosts

    @property
    def images(self) -> ImageIndex:
        """The near-duplicate index, loaded from the database on first use."""
        if self._images is None:
            self._images = load_image_index(self.store)
        return self._images

    @property
    def known(self) -> list[KnownImage]:
        """Reference photos from ``images.known`` folders (seized items, earlier cases)."""
        if self._known is None:
            self._known = load_known_images(self.watchlist.images.known, self.watchlist.folder())
        return self._known

    @property
    def keywords(self) -> KeywordMatcher:
        """The keyword matcher for this watchlist (default lexicon, included files, groups)."""
        if self._keywords is None:
            self._keywords = build_matcher(self.watchlist)
        return self._keywords

    @property
    def custody(self) -> CustodyLog:
        """The chain-of-custody log; its signing key is created on first use.

        The private key lives in ``keys/`` (mode 0600), outside the evidence folders, so an
        exported bundle can never carry it.
        """
        if self._custody is None:
            key = SigningKey.load_or_create(self.data_dir / "keys" / CUSTODY_KEY_NAME)
            mirror = self.data_dir / "evidence" / "custody.jsonl"
            self._custody = CustodyLog(self.store, key, mirror)
        return self._custody

    @property
    def wacz_key(self) -> WaczSigningKey:
        """The key that signs each capture's web archive (WACZ), created on first use.

        Kept beside the custody key (``keys/``, mode 0600). A WACZ's signature names only a
        public key; what says that key is the team's is a custody log entry carrying it,
        signed by the custody key: it is written the first time this data folder uses the
        key (and again if the log lacks it, say after the key file was restored).
        """
        if self._wacz_key is None:
            key, _ = WaczSigningKey.load_or_create(self.data_dir / "keys" / WACZ_KEY_NAME)
            announced = {
                entry.details.get("public_key")
                for entry in self.custody.entries(subject_prefix=f"{WACZ_KEY_ANNOUNCED}:")
            }
            if key.public_key_b64 not in announced:
                self.custody.append(
                    WACZ_KEY_ANNOUNCED,
                    f"{WACZ_KEY_ANNOUNCED}:{key.key_id}",
                    {
                        "key_id": key.key_id,
                        "fingerprint": key.fingerprint,
                        "public_key": key.public_key_b64,
                        "algorithm": key.ALGORITHM,
                        "signs": "each capture's WACZ (datapackage-digest.json signedData)",
                    },
                )
            self._wacz_key = key
        return self._wacz_key

    async def close(self) -> None:
        """Stop the browser (if it is ours) and close the database."""
        if self.owns_browser:
            await self.browser.close()
        if self._check_browser is not None:
            await self._check_browser.close()
        self.store.close()
