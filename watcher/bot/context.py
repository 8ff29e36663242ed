"""What the bot's handlers share: the running app, how to capture, upload limits, proposals."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from watcher.app import App
from watcher.bot.access import RefusalThrottle
from watcher.bot.buttons import Proposals
from watcher.models import CaptureSummary
from watcher.watchlist import Target, Watchlist

CLOUD_UPLOAD_LIMIT = 50_000_000  # Telegram's cloud Bot API: 50 MB per file a bot sends
SELF_HOSTED_UPLOAD_LIMIT = 2_000_000_000  # a self-hosted Bot API server: 2 GB


@dataclass
class BotContext:
    """The bot's view of the running watcher.

    ``capture`` runs one capture of a target and records it (the daemon passes its own, so a
    capture asked for in the chat is shown, alerted and drained like a scheduled one).
    ``self_hosted`` is true when ``alerts.telegram.api_url`` names a self-hosted Bot API
    server, which accepts files up to 2 GB.
    """

    app: App
    watchlist_path: Path
    capture: Callable[[Target], Awaitable[CaptureSummary]]
    self_hosted: bool = False
    upload_limit: int | None = None  # bytes; None: the limit of the Bot API in use
    proposals: Proposals = field(default_factory=Proposals)
    refusals: RefusalThrottle = field(default_factory=RefusalThrottle)

    @property
    def watchlist(self) -> Watchlist:
        """The running watchlist (the daemon swaps it on reload: always read it from here)."""
        return self.app.watchlist

    @property
    def max_upload(self) -> int:
        """The largest file the bot may send to the chat."""
        if self.upload_limit is not None:
            return self.upload_limit
        return SELF_HOSTED_UPLOAD_LIMIT if self.self_hosted else CLOUD_UPLOAD_LIMIT

    @property
    def exports_dir(self) -> Path:
        """Where bundles built for the chat are kept on the server."""
        return self.app.data_dir / "exports"
