"""Download a capture's post images, streamed to the blob store, within the capture's budget.

Platform image URLs expire within days, so images are fetched at capture time, with the
capture's cookies (read from its browser context), user agent and referer. Each body goes to
disk as it arrives: a page of 25 photos of 40 MB each once took the process from 153 MB to
1.3 GB held in memory; now a download holds one chunk. Every address is judged by the
capture's :class:`NetworkGuard` when each connection opens, redirects are followed one by
one (each judged again), and only image media types are kept, so a post pointing at the
team's router stores nothing. A failure is recorded with the image, never fatal to the
capture.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import httpx
from playwright.async_api import BrowserContext
from playwright.async_api import Error as PlaywrightError

from watcher.capture.netguard import GuardedBackend, NetworkGuard, RefusedAddress
from watcher.store.blobs import BlobStore

MAX_IMAGE_BYTES = 40 * 1024 * 1024
IMAGE_TIMEOUT_S = 30.0
PARALLEL_DOWNLOADS = 4
MAX_REDIRECTS = 5
CHUNK_BYTES = 256 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# A capture's images, at most: a 20-post page of albums is ~200 photos of a few hundred KB.
DEFAULT_BUDGET_IMAGES = 300
DEFAULT_BUDGET_MB = 300


@dataclass(frozen=True, slots=True)
class ImageBudget:
    """How many images, and how many bytes of them, one capture may download.

    Set by ``WATCHER_IMAGE_BUDGET_COUNT`` and ``WATCHER_IMAGE_BUDGET_MB`` (read at each
    capture); images past either are recorded as skipped for the budget, not fetched.
    """

    max_images: int = DEFAULT_BUDGET_IMAGES
    max_bytes: int = DEFAULT_BUDGET_MB * 1024 * 1024
    max_image_bytes: int = MAX_IMAGE_BYTES

    @classmethod
    def from_env(cls) -> ImageBudget:
        def number(name: str, default: int) -> int:
            value = os.environ.get(name, "").strip()
            return int(value) if value.isdigit() else default

        return cls(
            max_images=number("WATCHER_IMAGE_BUDGET_COUNT", DEFAULT_BUDGET_IMAGES),
            max_bytes=number("WATCHER_IMAGE_BUDGET_MB", DEFAULT_BUDGET_MB) * 1024 * 1024,
        )


@dataclass(frozen=True, slots=True)
class Download:
    """One image URL and what came of it: a stored blob, or the reason there is none."""

    url: str
    sha256: str | None
    size: int
    media_type: str | None
    error: str | None = None
    skipped_for_budget: bool = False


@dataclass
class _Spending:
    """What a capture's downloads have used of its budget (bytes stored or streaming)."""

    budget: ImageBudget
    bytes: int = 0
    incoming: list[tuple[Path, str]] = field(default_factory=list)  # (temp file, sha256)

    def take(self, size: int) -> bool:
        if self.bytes + size > self.budget.max_bytes:
            return False
        self.bytes += size
        return True


@dataclass(frozen=True, slots=True)
class _Fetch:
    """What every download of one capture shares: the client, the browser context whose
    cookies go along, who the request says it is, the guard, and where bodies go."""

    client: httpx.AsyncClient
    context: BrowserContext
    referer: str
    user_agent: str
    guard: NetworkGuard
    blobs: BlobStore
    spending: _Spending


class _OverBudget(Exception):
    pass


class _Failed(Exception):
    """A download ended without an image; the message is what the record says."""


async def download_images(
    context: BrowserContext,
    urls: list[str],
    referer: str,
    blobs: BlobStore,
    guard: NetworkGuard,
    user_agent: str = "",
    budget: ImageBudget | None = None,
    prefetched: dict[str, tuple[bytes, str | None]] | None = None,
) -> dict[str, Download]:
    """Fetch each distinct URL once into ``blobs``; returns a result for every URL.

    ``prefetched`` holds bodies the page load already received (URL -> bytes, media type):
    those are stored, not fetched a second time. Blobs are written before the capture is
    recorded; a blob no capture lists is harmless and reused.
    """
    budget = budget or ImageBudget()
    spending = _Spending(budget)
    limit = asyncio.Semaphore(PARALLEL_DOWNLOADS)
    ready = prefetched or {}
    unique = list(dict.fromkeys(urls))
    wanted, skipped = unique[: budget.max_images], unique[budget.max_images :]

    async def fetch(shared: _Fetch, url: str) -> Download:
        if url in ready and len(ready[url][0]) <= budget.max_image_bytes:
            return _store_prefetched(blobs, spending, url, *ready[url])
        async with limit:
            return await _download(shared, url)

    transport = httpx.AsyncHTTPTransport(retries=0)
    # httpx offers no public way to give its pool a network backend; this one judges and
    # pins every address (see GuardedBackend).
    transport._pool._network_backend = GuardedBackend(guard)
    try:
        async with httpx.AsyncClient(
            transport=transport, follow_redirects=False, trust_env=False
        ) as client:
            shared = _Fetch(client, context, referer, user_agent, guard, blobs, spending)
            results = list(await asyncio.gather(*(fetch(shared, u) for u in wanted)))
        await asyncio.to_thread(blobs.adopt_many, spending.incoming)
        spending.incoming = []
    finally:
        for tmp, _ in spending.incoming:  # cancelled or failed: no stray temporary files
            tmp.unlink(missing_ok=True)
    results += [_over_budget(u, budget, count=True) for u in skipped]
    return {d.url: d for d in results}


def _store_prefetched(
    blobs: BlobStore, spending: _Spending, url: str, data: bytes, media_type: str | None
) -> Download:
    if not spending.take(len(data)):
        return _over_budget(url, spending.budget)
    # Already in memory with the page's responses: written at once, made durable with the rest.
    tmp = blobs.incoming()
    digest = hashlib.sha256(data).hexdigest()
    # Listed before it is written: a disk that fills half-way leaves no stray file.
    spending.incoming.append((tmp, digest))
    tmp.write_bytes(data)
    return Download(url, digest, len(data), (media_type or "application/octet-stream").lower())


def _over_budget(url: str, budget: ImageBudget, count: bool = False) -> Download:
    """``url`` not fetched: the capture's budget of images (``count``) or of bytes is spent."""
    if count:
        why = f"the capture's budget of {budget.max_images} images was reached"
    else:
        why = f"the capture's image budget of {budget.max_bytes // (1024 * 1024)} MB was used up"
    return Download(url, None, 0, None, f"skipped: {why}", skipped_for_budget=True)


async def _download(shared: _Fetch, url: str) -> Download:
    """Fetch one image into a temporary file of the blob store; never raises."""
    try:
        async with asyncio.timeout(IMAGE_TIMEOUT_S):
            return await _follow(shared, url)
    except RefusedAddress as exc:
        return Download(url, None, 0, None, f"refused: {exc.url} leads to {_where(exc)}")
    except _OverBudget:
        return _over_budget(url, shared.spending.budget)
    except _Failed as exc:
        return Download(url, None, 0, None, str(exc))
    except TimeoutError:
        return Download(url, None, 0, None, f"no image within {IMAGE_TIMEOUT_S:g}s")
    except httpx.HTTPError as exc:
        return Download(url, None, 0, None, _first_line(exc))


def _where(exc: RefusedAddress) -> str:
    return f"{exc.why} ({exc.address})" if exc.address else exc.why


async def _follow(shared: _Fetch, url: str) -> Download:
    hop = url
    for _ in range(MAX_REDIRECTS + 1):
        await shared.guard.check_url(hop)  # refused here, by name, before any connection
        headers = {"Referer": shared.referer, "Accept": "image/*", "Accept-Encoding": "identity"}
        if shared.user_agent:
            headers["User-Agent"] = shared.user_agent
        cookie = await _cookie_header(shared.context, hop)
        if cookie:
            headers["Cookie"] = cookie
        async with shared.client.stream("GET", hop, headers=headers) as response:
            location = response.headers.get("location")
            if response.status_code in _REDIRECTS and location:
                hop = urljoin(hop, location)
                continue
            if response.status_code != 200:
                raise _Failed(f"HTTP {response.status_code}")
            media_type = _media_type(response)
            if not media_type.startswith("image/"):
                raise _Failed(f"not an image: the server says {media_type or 'nothing'}")
            digest, size = await _stream_to_blob(response, shared.blobs, shared.spending)
            return Download(url, digest, size, media_type)
    raise _Failed(f"more than {MAX_REDIRECTS} redirects")


async def _stream_to_blob(
    response: httpx.Response, blobs: BlobStore, spending: _Spending
) -> tuple[str, int]:
    """Write the body to a temporary blob file as it arrives; (sha256, size)."""
    limit = spending.budget.max_image_bytes
    declared = response.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise _Failed(f"image larger than {limit} bytes ({declared})")
    digest, size, taken = hashlib.sha256(), 0, 0
    tmp = blobs.incoming()
    try:
        with open(tmp, "wb") as out:
            async for chunk in response.aiter_bytes(CHUNK_BYTES):
                size += len(chunk)
                if size > limit:
                    raise _Failed(f"image larger than {limit} bytes (more than {limit} sent)")
                if not spending.take(len(chunk)):
                    raise _OverBudget()
                taken += len(chunk)
                digest.update(chunk)
                # Page-cache writes of one chunk: too short to be worth a thread hop.
                out.write(chunk)
    except BaseException:
        spending.bytes -= taken  # a body not kept does not count against the budget
        tmp.unlink(missing_ok=True)
        raise
    sha = digest.hexdigest()
    spending.incoming.append((tmp, sha))
    return sha, size


def _media_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip().lower()


async def _cookie_header(context: BrowserContext, url: str) -> str:
    """The Cookie header the capture's browser would send to ``url``."""
    with contextlib.suppress(PlaywrightError):  # a closed context: no cookies to send
        cookies = await context.cookies([url])
        return "; ".join(f"{c['name']}={c['value']}" for c in cookies)
    return ""


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
