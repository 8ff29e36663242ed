"""Who collected a capture, on what machine, with what clock and fonts: the Berkeley
Protocol's collection details, recorded with every capture (never the session's cookies)."""

from __future__ import annotations

import platform
import shutil
import socket
import subprocess
from functools import cache
from pathlib import Path

from watcher import __version__
from watcher.capture.browser import LOCALE, VIEWPORT
from watcher.capture.fonts import check_page_text


@cache
def clock_synchronised() -> str:
    """Whether the system clock is NTP-synchronised: ``yes``, ``no`` or ``unknown``."""
    if Path("/run/systemd/timesync/synchronized").exists():
        return "yes"
    timedatectl = shutil.which("timedatectl")
    if timedatectl:
        try:
            out = subprocess.run(
                [timedatectl, "show", "-p", "NTPSynchronized", "--value"],
                capture_output=True,
                text=True,
                timeout=3,
                check=False,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "unknown"
        return {"yes": "yes", "no": "no"}.get(out, "unknown")
    return "unknown"


def collection_metadata(
    *,
    target: str,
    platform_name: str,
    requested_url: str,
    final_url: str,
    http_status: int | None,
    started_at: str,
    ended_at: str,
    user_agent: str,
    browser_version: str,
    operator: str | None,
    session: str | None,
    page_text: str = "",
    browser_host: dict[str, str] | None = None,
    lost_attempts: list[dict[str, str]] | None = None,
) -> dict[str, object]:
    """The capture's metadata record (stored as a hashed ``metadata`` artifact).

    ``page_text`` (the posts' text) is checked against the installed fonts: the record says
    which fonts drew the screenshot and which of the page's scripts none of them has.
    ``browser_host``: the browser that loaded the page (``BrowserInfo.to_json``): this
    machine, or a remote endpoint's name and host:port; ``hostname`` stays the machine that
    ran watcher and stored the capture. ``lost_attempts``: remote browsers that died under
    this capture before it was taken again (``capture.pool``).
    """
    extra: dict[str, object] = {}
    if lost_attempts:
        extra["lost_attempts"] = lost_attempts
    return extra | {
        "browser_host": browser_host
        or {"endpoint": "local", "kind": "local", "host": socket.gethostname()},
        "target": target,
        "platform": platform_name,
        "requested_url": requested_url,
        "final_url": final_url,
        "http_status": http_status,
        "started_at": started_at,
        "ended_at": ended_at,
        "clock": "system clock, UTC",
        "clock_ntp_synchronised": clock_synchronised(),
        "user_agent": user_agent,
        "viewport": dict(VIEWPORT),
        "locale": LOCALE,
        "browser_version": browser_version,
        "watcher_version": __version__,
        "hostname": socket.gethostname(),
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "python": platform.python_version(),
        "operator": operator or "unnamed operator",
        "session": session,  # the name only: cookies are secrets and never stored here
        "fonts": check_page_text(page_text, target),
    }
