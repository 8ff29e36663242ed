"""Download a capture's post images through the capture's own browser context.

Platform image URLs expire within days, so images are fetched at capture time. Going through
the context keeps the target's session cookies and network settings. Every download is bounded
in size and time; a failure is recorded with the image, never fatal to the capture.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field

from playwright.async_api import BrowserContext
from playwright.async_api import Error as PlaywrightError

MAX_IMAGE_BYTES = 40 * 1024 * 1024
IMAGE_TIMEOUT_S = 30.0
PARALLEL_DOWNLOADS = 4


@dataclass(frozen=True, slots=True)
class Download:
    """One image URL and what came back: bytes, or the reason there are none."""

    url: str
    data: bytes | None
    media_type: str | None
    error: str | None = None
    # Known at once, so the archive can be asked what it already holds for these bytes.
    sha256: str | None = field(init=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha256(self.data).hexdigest() if self.data is not None else None
        object.__setattr__(self, "sha256", digest)


async def download_images(
    context: BrowserContext,
    urls: list[str],
    referer: str,
    max_bytes: int = MAX_IMAGE_BYTES,
    prefetched: dict[str, tuple[bytes, str | None]] | None = None,
) -> dict[str, Download]:
    """Fetch each distinct URL once; returns a result for every URL.

    ``prefetched`` holds bodies the page load already received (URL -> bytes, media type):
    those are not fetched a second time.
    """
    limit = asyncio.Semaphore(PARALLEL_DOWNLOADS)
    ready = prefetched or {}

    async def fetch(url: str) -> Download:
        if url in ready and len(ready[url][0]) <= max_bytes:
            data, media_type = ready[url]
            return Download(url, data, (media_type or "application/octet-stream").lower())
        async with limit:
            return await download_one(context, url, referer, max_bytes)

    unique = list(dict.fromkeys(urls))
    results = await asyncio.gather(*(fetch(u) for u in unique))
    return {d.url: d for d in results}


async def download_one(
    context: BrowserContext, url: str, referer: str, max_bytes: int = MAX_IMAGE_BYTES
) -> Download:
    """Fetch one image; never raises."""
    try:
        response = await context.request.get(
            url, headers={"Referer": referer}, timeout=IMAGE_TIMEOUT_S * 1000, max_redirects=5
        )
        if not response.ok:
            return Download(url, None, None, f"HTTP {response.status}")
        declared = int(response.headers.get("content-length", "0") or 0)
        if declared > max_bytes:
            await response.dispose()
            return Download(url, None, None, f"image larger than {max_bytes} bytes ({declared})")
        data = await response.body()
    except PlaywrightError as exc:
        return Download(url, None, None, _first_line(exc))
    if len(data) > max_bytes:
        return Download(url, None, None, f"image larger than {max_bytes} bytes ({len(data)})")
    media_type = response.headers.get("content-type", "application/octet-stream").split(";")[0]
    return Download(url, data, media_type.strip().lower())


def _first_line(exc: PlaywrightError) -> str:
    lines = (exc.message or str(exc)).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
