"""The ``jsonl`` sink: each alert as one JSON line appended to a file, for the team's tools.

    alerts:
      jsonl:
        path: alerts.jsonl            # beside the watchlist unless absolute
        kinds: [new_post, deleted_post]

A line holds when it was written, the alert as plain text and as Telegram HTML, and the
SHA-256 of its photos and screenshot in the blob store (``data/blobs``). One ``write`` of a
whole line to a file opened for appending, so a reader that follows the file never sees half
an alert, and two watchers appending to one file do not interleave within a line.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from watcher.alert.render import AlertMessage, plain_text
from watcher.alert.sinks import register_sink
from watcher.errors import PermanentAlertError, TransientAlertError
from watcher.timeutil import utc_now
from watcher.watchlist import AlertSection

if TYPE_CHECKING:
    from watcher.app import App


class JsonlAlerts(AlertSection):
    """``alerts.jsonl``: the file alerts are appended to."""

    path: str

    def addresses(self) -> list[str]:
        """The file, as written in the watchlist (the outbox names it so)."""
        return [self.path]


@register_sink
class JsonlSink:
    """Appends alerts to a JSON-lines file; nothing to attach, nothing refused."""

    name = "jsonl"
    config_model = JsonlAlerts

    def __init__(self, folder: Path) -> None:
        self.folder = folder  # relative paths start here: the watchlist's folder

    @classmethod
    def from_watchlist(cls, app: App, given: object = None) -> JsonlSink | None:
        """The sink for ``alerts.jsonl``; None when the watchlist has no such section."""
        if app.watchlist.alerts.configured().get(cls.name) is None:
            return None
        return cls(app.watchlist.folder())

    async def send(self, chat_id: str, message: AlertMessage) -> list[int]:
        """Append one alert; returns no message ids (a file has none)."""
        record = {
            "sent_at": utc_now(),
            "text": plain_text(message.html, sys.maxsize),
            "html": message.html,
            "photos": list(message.photo_shas),
            "screenshot": message.screenshot_sha,
        }
        await asyncio.to_thread(self._append, chat_id, record)
        return []

    async def send_text(self, chat_id: str, html: str) -> list[int]:
        """Append a digest (several alerts in one message)."""
        return await self.send(chat_id, AlertMessage(html=html, caption=html))

    def unattachable(self, shas: tuple[str, ...]) -> dict[str, str]:
        """None: a line names photos by their hash, whatever they are."""
        return {}

    async def close(self) -> None:
        """Nothing held open between alerts."""

    def _append(self, address: str, record: dict[str, object]) -> None:
        path = self.folder / Path(address).expanduser()
        line = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as exc:
            raise PermanentAlertError(
                f"cannot write alerts to {path} ({exc.strerror}); make sure its folder exists "
                "and watcher may write there, or change `path` under alerts.jsonl"
            ) from exc
        except OSError as exc:  # a full or failing disk: the alert waits and is tried again
            raise TransientAlertError(f"cannot write alerts to {path} ({exc.strerror})") from exc
