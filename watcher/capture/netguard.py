"""Keep a captured page (hostile by assumption) out of the team's own network.

A post's image URL, a redirect or a page's script can point at a router, a NAS, a cloud
metadata service or a local admin port. Every address a capture would connect to is checked
after its name is resolved: the browser's requests by a route on the context
(:meth:`NetworkGuard.install`), image downloads at the moment their socket connects
(:class:`GuardedBackend`, which then connects to the very address it checked, so a name that
resolves differently a second time gains nothing). A target reaches private addresses only
when the watchlist says ``allow_private_network: true`` (the bot's /watch never does).

The route sees a request's first URL only: Chromium follows a navigation's redirects itself.
So the browser reaches the network only through the context's guard proxy
(:mod:`watcher.capture.guardproxy`), which judges every connection, redirects included, with
this same guard and connects to the address it judged; Chromium resolves no name itself. The
route stays in front as the first check (an early refusal, named by its full URL); the
systemd unit's ``IPAddressDeny=`` is the last.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpcore
from playwright.async_api import BrowserContext, Route
from playwright.async_api import Error as PlaywrightError

log = logging.getLogger(__name__)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# (network, why) in the words a capture record uses. Checked in order: the metadata
# addresses before the wider ranges that hold them, so the record names the worse one.
_REFUSED: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.ip_network(net), why)
    for net, why in (
        ("169.254.169.254/32", "a cloud metadata service"),
        ("100.100.100.200/32", "a cloud metadata service"),
        ("fd00:ec2::254/128", "a cloud metadata service"),
        ("0.0.0.0/8", "an unspecified address"),
        ("10.0.0.0/8", "a private network"),
        ("100.64.0.0/10", "a carrier-grade NAT network"),
        ("127.0.0.0/8", "this machine (loopback)"),
        ("169.254.0.0/16", "a link-local network"),
        ("172.16.0.0/12", "a private network"),
        ("192.0.0.0/24", "a reserved network"),
        ("192.168.0.0/16", "a private network"),
        ("198.18.0.0/15", "a reserved network"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved network"),
        ("::/128", "an unspecified address"),
        ("::1/128", "this machine (loopback)"),
        ("::/96", "an IPv4-compatible address"),
        ("100::/64", "a discard address"),
        ("fc00::/7", "a private network (IPv6 unique local)"),
        ("fe80::/10", "a link-local network"),
        ("fec0::/10", "a site-local network"),
        ("ff00::/8", "a multicast address"),
    )
)


def refusal(address: str | Address) -> str | None:
    """Why ``address`` must not be reached from a capture, or None when it may.

    IPv6 forms that carry an IPv4 address (mapped ``::ffff:a.b.c.d``, NAT64, 6to4) are
    judged by the IPv4 address inside them.
    """
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or _nat64(ip)
        if inner is not None:
            return refusal(inner)
        ip = ipaddress.IPv6Address(int(ip))  # drop any %zone
    for network, why in _REFUSED:
        if ip.version == network.version and ip in network:
            return why
    return None


def _nat64(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip in ipaddress.IPv6Network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


class RefusedAddress(Exception):
    """A URL leads to an address a capture may not reach (or to none at all)."""

    def __init__(self, url: str, address: str | None, why: str) -> None:
        self.url, self.address, self.why = url, address, why
        where = f" ({address})" if address else ""
        super().__init__(f"refused {url}: it leads to {why}{where}")


@dataclass(frozen=True, slots=True)
class Refusal:
    """One request a capture did not make, and why (kept in the capture's metadata)."""

    url: str
    address: str | None
    why: str

    def to_json(self) -> dict[str, str | None]:
        return {"url": self.url, "address": self.address, "why": self.why}


@dataclass
class NetworkGuard:
    """The network policy of one capture, and the requests it refused.

    ``hosts`` maps names to addresses before DNS, as Chromium's ``--host-resolver-rules``
    do (:class:`watcher.capture.browser.Browser` passes the same map to both), so the guard
    judges the address the browser will actually use.
    """

    allow_private: bool = False
    hosts: Mapping[str, str] = field(default_factory=dict)
    refused: list[Refusal] = field(default_factory=list)
    # Hosts the guard proxy allowed but could not connect to ("host:port could not be
    # reached (why)"): the capture's "could not be opened" says why.
    unreachable: list[str] = field(default_factory=list)
    # (host, port) -> the address the guard proxy connected to: the archive's
    # WARC-IP-Address (the browser itself only saw the proxy).
    connected: dict[tuple[str, int], str] = field(default_factory=dict)
    # On the guard proxy's own refusals (header ``x-watcher-guard``): a secret of this
    # capture, so a site cannot dress a response of its own as one.
    refusal_mark: str = field(default_factory=lambda: f"refused {secrets.token_hex(8)}")
    _resolved: dict[tuple[str, int], tuple[str, ...]] = field(default_factory=dict, repr=False)

    async def resolve(self, url: str, host: str, port: int) -> tuple[str, ...]:
        """The addresses ``host`` resolves to, each allowed; RefusedAddress otherwise.

        One refused address among several refuses the name: whichever the connection
        picked could be the internal one.
        """
        host = host.strip("[]").rstrip(".").lower()
        key = (host, port)
        if key not in self._resolved:
            self._resolved[key] = await self._lookup(url, host, port)
        addresses = self._resolved[key]
        if not self.allow_private:
            for address in addresses:
                why = refusal(address)
                if why is not None:
                    raise self._refuse(url, address, why)
        return addresses

    async def check_url(self, url: str) -> None:
        """RefusedAddress unless ``url`` is http(s) to allowed addresses."""
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise self._refuse(url, None, "an address that is not a web address")
        default = 443 if parts.scheme == "https" else 80
        await self.resolve(url, parts.hostname, port or default)

    async def _lookup(self, url: str, host: str, port: int) -> tuple[str, ...]:
        mapped = self.hosts.get(host)
        if mapped is not None:
            return (mapped,)
        with contextlib.suppress(ValueError):
            return (str(ipaddress.ip_address(host)),)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError) as exc:
            # Refused rather than left to the browser: what we cannot judge, we do not reach.
            raise self._refuse(url, None, f"a name that does not resolve ({exc})") from exc
        return tuple(dict.fromkeys(str(info[4][0]) for info in infos))

    def _refuse(self, url: str, address: str | None, why: str) -> RefusedAddress:
        self.refused.append(Refusal(url, address, why))
        log.warning("capture refused %s: %s%s", url, why, f" ({address})" if address else "")
        return RefusedAddress(url, address, why)

    def refusal_for(self, url: str) -> Refusal | None:
        """The refusal recorded for ``url``, if it was refused."""
        return next((r for r in self.refused if r.url == url), None)

    async def install(self, context: BrowserContext) -> None:
        """Abort every request of ``context`` that leads to a refused address (also each
        redirect, which Chromium sends through the route again)."""
        if self.allow_private:
            return  # nothing to judge: no route, so the browser keeps its HTTP cache

        async def judge(route: Route) -> None:
            try:
                await self.check_url(route.request.url)
            except RefusedAddress:
                with contextlib.suppress(PlaywrightError):  # the page may be gone already
                    await route.abort("addressunreachable")
                return
            with contextlib.suppress(PlaywrightError):
                await route.fallback()

        await context.route("**/*", judge)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses the guard allowed.

    The name is resolved and judged here, when the socket is opened, and the socket is
    opened to the address judged: a redirect, a second connection or a second DNS answer
    all come through here again.
    """

    def __init__(self, guard: NetworkGuard, inner: httpcore.AsyncNetworkBackend | None = None):
        self.guard = guard
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        shown = f"{host}:{port}"
        try:
            addresses = await self.guard.resolve(shown, host, port)
        except RefusedAddress as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        last: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None  # resolve() never returns no address
        raise last

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not reachable from a capture")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)
