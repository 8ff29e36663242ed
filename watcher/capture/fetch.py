"""A target's page as the server sends it, without a renderer: the HTTP light check.

Telegram's previews and many listing pages are built on the server, so their posts are in
the HTML the server answers with; reading that costs a few milliseconds of CPU, where a
browser check paints the page (~0.65 CPU-s). The request wears the target's identity: the
session's cookies (those a browser would send to the URL, matched by the standard library's
cookie rules), its user agent and language, or for anonymous targets those of the checks'
Chromium.

Why httpx here rather than Playwright's request API (``context.request``): that API reads
every body whole in the Playwright driver, with no limit but time (a page that streams
gigabytes would take the driver, and every capture with it, down), it resolves names itself
after any check we make, and the context's guard route does not see its requests. Here the
body is read in chunks up to :data:`MAX_HTML_BYTES`, every connection goes through
:class:`GuardedBackend` (the address judged is the address connected to, also for each
redirect hop, followed one by one), and the whole exchange is bounded in time.
"""

from __future__ import annotations

import asyncio
import email.utils
import http.cookiejar
import ssl
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from watcher.capture.netguard import GuardedBackend, NetworkGuard
from watcher.errors import CaptureError

# A 20-post Telegram preview is ~100 KB; a listing page a few hundred. Past this it is not a
# page to read lightly: the browser takes it.
MAX_HTML_BYTES = 5 * 1024 * 1024
MAX_REDIRECTS = 5
CHUNK_BYTES = 64 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# What Chromium sends for a navigation, so the server answers as it does to the browser.
_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8"
)
_SSL: ssl.SSLContext | None = None


@dataclass(frozen=True, slots=True)
class HttpPage:
    """What the server answered: its final URL after redirects, status and HTML."""

    requested_url: str
    final_url: str
    status: int
    html: str


@dataclass(frozen=True, slots=True)
class Identity:
    """Who asks: user agent, language (a locale such as ``en-US``) and session cookies
    (Playwright's cookie dicts, as session files hold them)."""

    user_agent: str
    locale: str = "en-US"
    cookies: tuple[Mapping[str, Any], ...] = ()


class RateLimited(CaptureError):
    """The site answered 429 (or 503 with ``Retry-After``): it asks us to come back later
    (``retry_after`` seconds, when it said; None when it did not)."""

    def __init__(self, url: str, status: int, retry_after: float | None) -> None:
        host = urlsplit(url).hostname or url
        wait = f"asked to wait {retry_after:.0f} s" if retry_after is not None else "gave no time"
        super().__init__(
            "rate_limited",
            f"{host} answered HTTP {status} (too many requests or overloaded) and {wait}; "
            "watcher leaves that site alone until then and tries again later by itself",
        )
        self.url, self.status, self.retry_after = url, status, retry_after


def is_rate_limit(status: int | None, retry_after: float | None) -> bool:
    """429, or 503 with a ``Retry-After``: the site asks for a pause. A bare 503 is a site
    that is down, left to the capture's own failure backoff."""
    return status == 429 or (status == 503 and retry_after is not None)


def accept_language(locale: str) -> str:
    """The ``Accept-Language`` Chromium sends for ``locale``: ``en-US,en;q=0.9``."""
    language = locale.split("-")[0]
    return locale if language == locale else f"{locale},{language};q=0.9"


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now (a number of seconds, or an HTTP date); None when
    absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def cookie_header(cookies: Iterable[Mapping[str, Any]], url: str) -> str:
    """The ``Cookie`` header a browser would send to ``url`` from ``cookies`` (domain, path,
    secure and expiry rules of :mod:`http.cookiejar`)."""
    jar = http.cookiejar.CookieJar()
    for c in cookies:
        domain = str(c.get("domain") or "")
        if not domain or "name" not in c:
            continue
        expires = c.get("expires")
        jar.set_cookie(
            http.cookiejar.Cookie(
                version=0,
                name=str(c["name"]),
                value=str(c.get("value", "")),
                port=None,
                port_specified=False,
                domain=domain,
                # ".example.com" is sent to every name under it; "www.example.com" (a
                # host-only cookie in Playwright's form) only to that host.
                domain_specified=domain.startswith("."),
                domain_initial_dot=domain.startswith("."),
                path=str(c.get("path") or "/"),
                path_specified=True,
                secure=bool(c.get("secure")),
                expires=int(expires) if isinstance(expires, int | float) and expires > 0 else None,
                discard=False,
                comment=None,
                comment_url=None,
                rest={},
            )
        )
    request = urllib.request.Request(url)
    jar.add_cookie_header(request)
    return request.get_header("Cookie") or ""


def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~10 ms of CPU: once per process, not once per check.
    global _SSL
    if _SSL is None:
        _SSL = httpx.create_ssl_context()
    return _SSL


async def fetch_html(
    url: str,
    guard: NetworkGuard,
    identity: Identity,
    timeout_s: float,
    max_bytes: int = MAX_HTML_BYTES,
) -> HttpPage:
    """GET ``url`` as ``identity``, following redirects (each judged by ``guard``).

    Raises :class:`RateLimited` on 429 (503 with ``Retry-After``), ``CaptureError``
    (``timeout``, ``network``, ``http_error``, ``too_large``, ``not_html``) otherwise, and
    ``RefusedAddress`` when the page or a redirect leads where the guard refuses.
    """
    transport = httpx.AsyncHTTPTransport(retries=0, verify=_ssl_context())
    # httpx offers no public way to give its pool a network backend; this one judges and
    # pins every address (see GuardedBackend), as the image downloads do.
    transport._pool._network_backend = GuardedBackend(guard)
    try:
        async with (
            asyncio.timeout(timeout_s),
            httpx.AsyncClient(
                transport=transport,
                follow_redirects=False,
                trust_env=False,
                timeout=timeout_s,  # the whole exchange is bounded above; no shorter phase
            ) as client,
        ):
            return await _follow(client, url, guard, identity, max_bytes)
    except TimeoutError as exc:
        raise CaptureError(
            "timeout", f"{url} did not answer within {timeout_s:g}s; the site may be down or slow"
        ) from exc
    except httpx.HTTPError as exc:
        # A connection the guard refused comes back as a ConnectError naming the address.
        raise CaptureError("network", f"{url} could not be read: {_first_line(exc)}") from exc


async def _follow(
    client: httpx.AsyncClient, url: str, guard: NetworkGuard, identity: Identity, max_bytes: int
) -> HttpPage:
    hop = url
    for _ in range(MAX_REDIRECTS + 1):
        await guard.check_url(hop)  # refused here, by name, before any connection
        headers = {
            "Accept": _ACCEPT,
            "Accept-Language": accept_language(identity.locale),
            "User-Agent": identity.user_agent,
        }
        cookie = cookie_header(identity.cookies, hop)
        if cookie:
            headers["Cookie"] = cookie
        async with client.stream("GET", hop, headers=headers) as response:
            location = response.headers.get("location")
            if response.status_code in _REDIRECTS and location:
                hop = urljoin(hop, location)
                continue
            retry = retry_after_seconds(response.headers.get("retry-after"))
            if is_rate_limit(response.status_code, retry):
                raise RateLimited(hop, response.status_code, retry)
            if response.status_code >= 400:
                raise CaptureError("http_error", f"{hop} answered HTTP {response.status_code}")
            media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if media_type not in ("text/html", "application/xhtml+xml"):
                raise CaptureError("not_html", f"{hop} is not a web page ({media_type or '?'})")
            body = await _read_bounded(response, hop, max_bytes)
            text = body.decode(response.encoding or "utf-8", errors="replace")
            return HttpPage(url, hop, response.status_code, text)
    raise CaptureError("network", f"{url} redirected more than {MAX_REDIRECTS} times")


async def _read_bounded(response: httpx.Response, url: str, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length", "").strip()
    too_large = CaptureError("too_large", f"{url} is larger than {max_bytes} bytes")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    parts, size = [], 0
    async for chunk in response.aiter_bytes(CHUNK_BYTES):
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        parts.append(chunk)
    return b"".join(parts)


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
