"""``watcher ocr``: read the text in archived photos that were not read yet.

    watcher ocr [--limit N]     read up to N unread photos (newest first), then stop

``watcher run`` reads new photos by itself, off the capture path; this drains a backlog
(photos archived before OCR existed, or while ``images.ocr`` was off) while the daemon is
stopped. It takes the data folder's lock as ``watcher run`` does.
"""

from __future__ import annotations

import argparse
import asyncio

from watcher.alert.console import ConsoleSink
from watcher.app import App
from watcher.commands import run_with_app
from watcher.detect.ocr import OcrStatus
from watcher.steps.photo_text import PhotoReader
from watcher.store.photo_text import count_unread


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``watcher ocr`` to the command line."""
    ocr = sub.add_parser(
        "ocr",
        parents=[common],
        help="read the text in archived photos not read yet",
        description="Read the text in archived photos not read yet (newest first): contacts,"
        " keywords and prices found in them are recorded and alerted as `watcher run` does.",
        epilog="Examples:\n  watcher ocr\n  watcher ocr --limit 50",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ocr.add_argument("--limit", type=int, default=None, help="read at most N photos")


def cmd_ocr(args: argparse.Namespace) -> int:
    """``watcher ocr``: read unread photos, print a line per photo and its findings."""
    return run_with_app(args, lambda app: _read_all(app, args.limit), lock=True)


async def _read_all(app: App, limit: int | None) -> int:
    waiting = count_unread(app.store)
    todo = waiting if limit is None else min(waiting, limit)
    print(f"{waiting} photo(s) not read yet; reading {todo}", flush=True)
    reader, console, counts = PhotoReader(app), ConsoleSink(), dict.fromkeys(OcrStatus, 0)
    try:
        for n in range(1, todo + 1):
            reading = await reader.read_next()
            if reading is None:
                break
            result = reading.result
            counts[result.status] += 1
            what = (
                f"{len(result.boxes)} line(s)" if result.status == OcrStatus.OK else result.reason
            )
            print(f"[{n}/{todo}] {reading.sha256[:12]} {result.status}: {what}", flush=True)
            for event in reading.events:
                console.show(event)
    finally:
        await asyncio.to_thread(reader.close)
    print(", ".join(f"{count} {status}" for status, count in counts.items() if count) or "done")
    return 0


COMMANDS = {"ocr": cmd_ocr}
