"""The guard proxy: every connection a browser context makes, judged before it is made.

Playwright's routes see a request's first URL only: a navigation that answers ``302`` to a
router, a NAS or a metadata service is followed by Chromium itself, which has then sent a GET
there before anyone could refuse it (issue 19). Each capture's context therefore talks to the
network only through one of these proxies (``proxy=`` of the context, loopback included: the
bypass list says ``<-loopback>``). The proxy resolves each host itself, judges every address
with the context's :class:`NetworkGuard` and connects to the very address it judged, so a
second DNS answer (rebinding) gains nothing. ``CONNECT`` (https, wss) is tunnelled byte for
byte, without TLS interception: Chromium checks the site's certificate as ever. Plain http is
parsed with h11 and forwarded one request at a time, each judged on its own, so a kept-alive
connection to the proxy cannot carry a second request to another host.

A refusal is a ``403`` naming the address and the watchlist switch, logged and recorded in
the guard (the capture's record says what was refused). One proxy per context, on its own
ephemeral port of 127.0.0.1: the port is the context's policy, no credentials to guess.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

import h11

from watcher.capture.netguard import NetworkGuard, RefusedAddress

log = logging.getLogger(__name__)

# Hop-by-hop headers (RFC 9110 7.6.1) and the proxy's own: never forwarded either way.
_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authorization",
        b"proxy-authenticate",
        b"te",
        b"trailer",
        b"upgrade",
    }
)
# The response head is read before any body; a client or server that sends more is cut.
_MAX_HEAD = 64 * 1024
_CHUNK = 64 * 1024
CONNECT_TIMEOUT_S = 15.0
# The header on the proxy's refusals, its value the guard's ``refusal_mark``.
GUARD_HEADER = "x-watcher-guard"


class GuardProxy:
    """An HTTP proxy on 127.0.0.1 for one browser context, holding that context's guard.

    ``connect_hosts`` (name -> address) is for tests only, as the browser's
    ``host_rules``: the guard judges a name by the address it stands for while the proxy
    connects to a loopback server playing that host. In production it is empty and the
    proxy connects to the address it judged.
    """

    def __init__(self, guard: NetworkGuard, connect_hosts: Mapping[str, str] | None = None):
        self.guard = guard
        self.connect_hosts = dict(connect_hosts or {})
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> GuardProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return self._server.sockets[0].getsockname()[1]

    def playwright_proxy(self) -> dict[str, str]:
        """``new_context(proxy=...)``: everything through this proxy, loopback too.

        Chromium sends loopback addresses around a proxy unless the bypass list says
        ``<-loopback>``; Playwright adds it unless an environment variable says not to, so
        it is written here, where no environment can take it away.
        """
        return {"server": f"http://127.0.0.1:{self.port}", "bypass": "<-loopback>"}

    def rebind(self, guard: NetworkGuard) -> None:
        """Serve a reused context's next capture: its guard, and no connection (tunnel,
        kept-alive socket) left open from the capture before, which the new guard never
        judged."""
        self.guard = guard
        self._drop_clients()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self._drop_clients()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _drop_clients(self) -> None:
        for writer in list(self._clients):
            writer.close()
        self._clients.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._clients.add(writer)
        self.connections += 1
        try:
            await self._client(reader, writer)
        except (OSError, asyncio.IncompleteReadError, h11.ProtocolError) as exc:
            # One browser connection gone wrong (reset, garbage, closed under us): that
            # connection ends, the proxy and the capture go on.
            log.debug("guard proxy connection ended: %r", exc)
        except asyncio.CancelledError:
            # Only close() cancels these; ending quietly, as asyncio's stream server reports
            # a handler that ends cancelled as an error in the log.
            pass
        finally:
            self._clients.discard(writer)
            self._tasks.discard(task)
            writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD)
        while True:
            event = await _next_event(conn, reader)
            if not isinstance(event, h11.Request):
                return  # the browser closed its connection (or sent nothing usable)
            if event.method == b"CONNECT":
                await self._tunnel(conn, event, reader, writer)
                return  # the socket belonged to the tunnel; nothing follows on it
            keep = await self._forward(conn, event, reader, writer)
            if not keep or conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()

    # -- CONNECT: a tunnel to the judged address ---------------------------------------------
    async def _tunnel(
        self,
        conn: h11.Connection,
        request: h11.Request,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        target = request.target.decode("ascii", "replace")
        host, _, port_text = target.rpartition(":")
        if not host or not port_text.isdigit():
            await _answer(conn, writer, 400, f"CONNECT needs host:port, not {target!r}\n")
            return
        port = int(port_text)
        upstream = await self._open(
            conn, writer, f"https://{host}:{port}/", host, port, request_is_tunnel=True
        )
        if upstream is None:
            return
        up_reader, up_writer = upstream
        try:
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            # Bytes the browser sent after its CONNECT head (a TLS hello, at once) are in
            # h11's buffer: they go first.
            leftover, _closed = conn.trailing_data
            if leftover:
                up_writer.write(bytes(leftover))
            await _pipe_both(reader, writer, up_reader, up_writer)
        finally:
            up_writer.close()

    # -- plain http: one request, judged, forwarded ---------------------------------------------
    async def _forward(
        self,
        conn: h11.Connection,
        request: h11.Request,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Forward one absolute-form request; False when the browser's connection must end."""
        url = request.target.decode("ascii", "replace")
        scheme, sep, rest = url.partition("://")
        if not sep or scheme.lower() != "http":
            await _answer(conn, writer, 400, "this proxy forwards http:// requests only\n")
            return False
        authority, slash, path = rest.partition("/")
        path, _, _fragment = path.partition("#")
        authority = authority.rpartition("@")[2]  # userinfo is not part of where to connect
        host, port = _split_authority(authority)
        if host is None:
            await _answer(conn, writer, 400, f"no host in {url!r}\n")
            return False
        upstream = await self._open(conn, writer, url, host, port)
        if upstream is None:
            return False
        up_reader, up_writer = upstream
        try:
            return await self._exchange(
                conn, request, "/" + path if slash else "/", reader, writer, up_reader, up_writer
            )
        finally:
            up_writer.close()

    async def _exchange(
        self,
        conn: h11.Connection,
        request: h11.Request,
        target: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> bool:
        up = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEAD)
        # raw_items: the names as the browser wrote them (h11 lowercases the plain list);
        # the archive records what was said, in its own case.
        headers = [(k, v) for k, v in request.headers.raw_items() if k.lower() not in _HOP]
        headers.append((b"connection", b"close"))  # one request per upstream connection
        _send(up_writer, up, h11.Request(method=request.method, target=target, headers=headers))
        while True:  # the request body, as the browser sends it
            event = await _next_event(conn, reader)
            if isinstance(event, h11.Data):
                _send(up_writer, up, h11.Data(data=event.data))
            elif isinstance(event, h11.EndOfMessage):
                _send(up_writer, up, h11.EndOfMessage())
                break
            else:
                return False  # the browser went away mid-body
        await up_writer.drain()
        while True:
            event = await _next_event(up, up_reader)
            if isinstance(event, h11.InformationalResponse):
                continue  # 100 Continue was for us; the browser already sent its body
            if not isinstance(event, h11.Response):
                return False  # the server closed without answering: so does the proxy
            kept = [(k, v) for k, v in event.headers.raw_items() if k.lower() not in _HOP]
            kept = [(k, v) for k, v in kept if k.lower() != b"transfer-encoding"]
            _send(
                writer,
                conn,
                h11.Response(status_code=event.status_code, headers=kept, reason=event.reason),
            )
            break
        while True:
            event = await _next_event(up, up_reader)
            if isinstance(event, h11.Data):
                _send(writer, conn, h11.Data(data=event.data))
                await writer.drain()
            elif isinstance(event, h11.EndOfMessage):
                _send(writer, conn, h11.EndOfMessage())
                await writer.drain()
                return True
            else:
                return False  # cut mid-body: the browser sees the connection close

    # -- judging and connecting ----------------------------------------------------------------
    async def _open(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        url: str,
        host: str,
        port: int,
        request_is_tunnel: bool = False,
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """A connection to an address of ``host`` the guard allowed; None once the browser
        has been answered (403 refused, 502 unreachable)."""
        name = host.strip("[]").rstrip(".").lower()
        try:
            addresses = await self.guard.resolve(url, name, port)
        except RefusedAddress as exc:
            where = f"{exc.why} ({exc.address})" if exc.address else exc.why
            await _answer(
                conn,
                writer,
                403,
                f"watcher's network guard refused {url}: it leads to {where}. If this page "
                "really is on your own network, set `allow_private_network: true` on the "
                "target in the watchlist.\n",
                mark=self.guard.refusal_mark,
            )
            return None
        connect_to = self.connect_hosts.get(name)
        last: Exception | None = None
        for address in (connect_to,) if connect_to else addresses:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    opened = await asyncio.open_connection(address, port, limit=_CHUNK * 4)
            except (OSError, TimeoutError) as exc:
                last = exc
                continue
            self.guard.connected[(name, port)] = address
            return opened
        why = f"{host}:{port} could not be reached ({last})"
        self.guard.unreachable.append(why)
        log.info("guard proxy: %s", why)
        if request_is_tunnel:
            await _answer(conn, writer, 502, why + "\n")
        # Plain http: no answer at all, so the browser reports a network error as it would
        # without a proxy, not a page that says "502" as if the site had said it.
        return None


def _split_authority(authority: str) -> tuple[str | None, int]:
    if authority.startswith("["):
        host, _, rest = authority[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = authority.partition(":")
    if not host:
        return None, 80
    return host, int(port) if port.isdigit() else 80


def _send(writer: asyncio.StreamWriter, conn: h11.Connection, event: h11.Event) -> None:
    data = conn.send(event)
    if data:
        writer.write(data)


async def _next_event(conn: h11.Connection, reader: asyncio.StreamReader) -> h11.Event | type:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(await reader.read(_CHUNK))


async def _answer(
    conn: h11.Connection, writer: asyncio.StreamWriter, status: int, text: str, mark: str = ""
) -> None:
    """The proxy's own answer to the browser (a refusal, a bad request, no upstream)."""
    body = text.encode("utf-8")
    headers = [
        ("content-type", "text/plain; charset=utf-8"),
        ("content-length", str(len(body))),
        ("cache-control", "no-store"),
        ("x-content-type-options", "nosniff"),
        ("connection", "close"),  # the browser's next request opens a connection of its own
    ]
    if mark:
        headers.append((GUARD_HEADER, mark))
    _send(writer, conn, h11.Response(status_code=status, headers=headers))
    _send(writer, conn, h11.Data(data=body))
    _send(writer, conn, h11.EndOfMessage())
    await writer.drain()


async def _pipe_both(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    """Copy bytes both ways until either side closes."""

    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while chunk := await src.read(_CHUNK):
                dst.write(chunk)
                await dst.drain()
            if dst.can_write_eof():
                dst.write_eof()

    tasks = [
        asyncio.ensure_future(pipe(reader, up_writer)),
        asyncio.ensure_future(pipe(up_reader, writer)),
    ]
    try:
        # A half-closed tunnel is finished for a browser: the first side to end ends both.
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
