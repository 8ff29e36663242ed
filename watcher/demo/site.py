"""A small loopback web site that imitates the pages the watcher reads.

It serves Telegram-like public channel previews (``/s/<name>``, the real ``t.me/s`` markup;
``/js/<name>``: the same page built by a script, whose server HTML holds no post)
and a marketplace seller page (``/shop/<name>``) whose content can be changed while it runs,
plus images (``/img/<key>``) and arbitrary fixed responses (:meth:`DemoSite.route`). It is
both the bundled demo (``watcher demo``) and the fixture site of the test-suite.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import html
import io
import ipaddress
import re
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import parse_qs, quote, unquote, urlsplit

from PIL import Image

from watcher.demo.images import variant

PAGE_SIZE = 20  # Telegram's preview shows the 20 most recent posts
HTML_TYPE = "text/html; charset=utf-8"
_URL = re.compile(r"https?://[^\s<>\"']+")
_LOOPBACK_NAMES = ("localhost",)


@dataclass
class SitePost:
    """One post of a channel, or one listing of a shop, as the site holds it."""

    id: int
    text: str
    images: list[str] = field(default_factory=list)  # image keys, served at /img/<key>
    author: str | None = None
    posted_at: str = ""  # UTC ISO, e.g. 2026-11-23T00:30:40+00:00
    links: list[str] = field(default_factory=list)
    edited: bool = False


@dataclass
class _Feed:
    kind: str  # "channel" or "shop"
    name: str
    title: str
    posts: dict[int, SitePost] = field(default_factory=dict)
    next_id: int = 1


@dataclass(frozen=True)
class _Route:
    body: bytes
    status: int
    content_type: str
    delay: float
    headers: dict[str, str]


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class DemoSite:
    """The demo / fixture web site. Start it, change its content, point the watcher at it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if not _is_loopback(host):
            raise ValueError(f"the demo site only listens on loopback, not {host!r}")
        self.host = host
        self.port = port
        self.requests: list[str] = []  # request paths (with query string), in arrival order
        self._feeds: dict[str, _Feed] = {}
        self._images: dict[str, tuple[bytes, str, tuple[int, int] | None]] = {}
        self._routes: dict[str, _Route] = {}
        # Built-in answers already rendered, by request path; emptied by every change of
        # content. A real site serves a busy page from its cache: rendering 5,000 previews
        # again for each request made this site, not the watcher, the benchmarks' bottleneck.
        self._rendered: dict[str, _Response] = {}
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Self:
        """Listen on ``host:port`` in a daemon thread; raises OSError when the port is taken."""
        if self._server is not None:
            return self
        try:
            server = _Server((self.host, self.port), _handler_for(self))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise OSError(
                    exc.errno,
                    f"demo site: port {self.port} on {self.host} is already in use "
                    "(another demo running? pick another port)",
                ) from exc
            raise
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        with self._lock:
            self._changed()  # pages name the site's address
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.name = f"demo-site-{self.port}"
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port. Safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running site (no trailing slash)."""
        if self._server is None and self.port == 0:
            raise RuntimeError("the demo site has no port yet: call start() first")
        return f"http://{self.host}:{self.port}"

    # -- feeds -----------------------------------------------------------------------------
    def channel(self, name: str, title: str | None = None) -> None:
        """Create (or retitle) a Telegram-like public channel served at ``/s/<name>``."""
        self._define_feed("channel", name, title)

    def shop(self, name: str, title: str | None = None) -> None:
        """Create (or retitle) a marketplace seller page served at ``/shop/<name>``."""
        self._define_feed("shop", name, title)

    def add_post(
        self,
        feed: str,
        text: str,
        images: list[str] | tuple[str, ...] = (),
        author: str | None = None,
        posted_at: str | datetime | None = None,
        links: list[str] | tuple[str, ...] = (),
    ) -> int:
        """Add a post (channel) or listing (shop); returns its id (1, 2, ... per feed)."""
        with self._lock:
            target = self._feed(feed)
            self._changed()
            post_id = target.next_id
            target.next_id += 1
            target.posts[post_id] = SitePost(
                id=post_id,
                text=text,
                images=_image_keys(images),
                author=author,
                posted_at=_iso_time(posted_at),
                links=list(links),
            )
            return post_id

    def edit_post(
        self,
        feed: str,
        post_id: int,
        text: str | None = None,
        images: list[str] | None = None,
    ) -> None:
        """Change a post's text and/or images and mark it edited; KeyError if it is gone."""
        with self._lock:
            post = self._post(feed, post_id)
            self._changed()
            if text is not None:
                post.text = text
            if images is not None:
                post.images = _image_keys(images)
            post.edited = True

    def delete_post(self, feed: str, post_id: int) -> None:
        """Remove a post; its id is never reused. KeyError if there is no such post."""
        with self._lock:
            self._post(feed, post_id)
            self._changed()
            del self._feed(feed).posts[post_id]

    def show_post(self, feed: str, post: SitePost) -> None:
        """Put a deleted post back under its own id (dealers hide posts and show them again)."""
        with self._lock:
            self._feed(feed).posts[post.id] = _copy(post)
            self._changed()

    def posts(self, feed: str) -> list[SitePost]:
        """Copies of the feed's current posts, oldest first."""
        with self._lock:
            return [_copy(p) for p in self._feed(feed).posts.values()]

    # -- images and fixed routes -----------------------------------------------------------
    def put_image(self, key: str, data: bytes, content_type: str = "image/jpeg") -> str:
        """Serve ``data`` at ``/img/<key>``; returns that root-relative path."""
        with self._lock:
            self._images[key] = (bytes(data), content_type, _image_size(data))
            self._changed()  # a page's photo sizes come from its images
        return image_path(key)

    def add_photo(self, key: str, seed: int, **variant_kwargs: object) -> str:
        """Serve a generated photo (:func:`watcher.demo.images.variant`) at ``/img/<key>``."""
        data = variant(seed, **variant_kwargs)  # type: ignore[arg-type]
        fmt = str(variant_kwargs.get("fmt", "JPEG")).lower()
        content_type = "image/jpeg" if fmt in ("jpeg", "jpg") else f"image/{fmt}"
        return self.put_image(key, data, content_type)

    def route(
        self,
        path: str,
        body: bytes | str = b"",
        status: int = 200,
        content_type: str = HTML_TYPE,
        delay: float = 0.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer ``path`` with a fixed response (after ``delay`` seconds).

        A route wins over the built-in pages, so it can turn a channel into a login wall
        or a dead page. ``path`` may carry a query string to match only that exact URL.
        """
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        with self._lock:
            self._routes[path] = _Route(data, status, content_type, delay, dict(headers or {}))

    def unroute(self, path: str) -> None:
        """Forget a :meth:`route` so the built-in page (or a 404) answers again."""
        with self._lock:
            self._routes.pop(path, None)

    # -- request handling (called from server threads) ---------------------------------------
    def respond(self, raw_path: str) -> _Response:
        """The response to a GET of ``raw_path`` (path plus optional query string)."""
        with self._lock:
            self.requests.append(raw_path)
            parts = urlsplit(raw_path)
            route = self._routes.get(raw_path) or self._routes.get(parts.path)
            if route is not None:
                return _Response(
                    route.status, route.body, route.content_type, route.headers, route.delay
                )
            cached = self._rendered.get(raw_path)
            if cached is not None:
                return cached
            path = unquote(parts.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            response = self._builtin(path, query)
            self._rendered[raw_path] = response
            return response

    def _builtin(self, path: str, query: dict[str, str]) -> _Response:
        """Built-in pages: index, channel, shop, listing and images; else 404."""
        segments = [s for s in path.split("/") if s]
        if not segments:
            return _html(_index_page(self._feeds.values()))
        head, rest = segments[0], segments[1:]
        if head == "img" and rest:
            return self._image("/".join(rest))
        if head == "s" and len(rest) == 1 and self._is(rest[0], "channel"):
            before = query.get("before", "")
            feed = self._feeds[rest[0]]
            return _html(_channel_page(feed, self, int(before) if before.isdigit() else None))
        if head == "js" and len(rest) == 1 and self._is(rest[0], "channel"):
            return _html(_scripted(_channel_page(self._feeds[rest[0]], self, None)))
        if head == "shop" and rest and self._is(rest[0], "shop"):
            feed = self._feeds[rest[0]]
            if len(rest) == 1:
                return _html(_shop_page(feed, self))
            if len(rest) == 3 and rest[1] == "item":
                post = feed.posts.get(listing_number(rest[2]) or 0)
                if post is not None:
                    return _html(_item_page(feed, post, self))
        return _not_found()

    def _image(self, key: str) -> _Response:
        stored = self._images.get(key)
        if stored is None:
            return _not_found()
        return _Response(200, stored[0], stored[1], {"Cache-Control": "max-age=3600"})

    def image_size(self, key: str) -> tuple[int, int] | None:
        """Pixel size of the image stored under ``key``, when known."""
        stored = self._images.get(key)
        return stored[2] if stored else None

    # -- internals -----------------------------------------------------------------------------
    def _define_feed(self, kind: str, name: str, title: str | None) -> None:
        if not name or "/" in name or name != name.strip():
            raise ValueError(f"bad feed name {name!r}")
        with self._lock:
            self._changed()
            existing = self._feeds.get(name)
            if existing is None:
                self._feeds[name] = _Feed(kind=kind, name=name, title=title or name)
            elif existing.kind != kind:
                raise ValueError(f"{name!r} is already a {existing.kind}")
            elif title:
                existing.title = title

    def _changed(self) -> None:
        """Forget the rendered pages: the content changed (call holding the lock)."""
        self._rendered.clear()

    def _is(self, name: str, kind: str) -> bool:
        feed = self._feeds.get(name)
        return feed is not None and feed.kind == kind

    def _feed(self, name: str) -> _Feed:
        try:
            return self._feeds[name]
        except KeyError:
            raise KeyError(f"no channel or shop named {name!r}") from None

    def _post(self, feed: str, post_id: int) -> SitePost:
        try:
            return self._feed(feed).posts[post_id]
        except KeyError:
            raise KeyError(f"{feed!r} has no post {post_id}") from None


def _image_keys(images: list[str] | tuple[str, ...]) -> list[str]:
    # Accept what put_image/add_photo return (``/img/<key>``) as well as bare keys.
    return [unquote(i.removeprefix("/img/")) for i in images]


def image_path(key: str) -> str:
    """Root-relative URL path of the image stored under ``key``."""
    return "/img/" + quote(key)


def listing_id(post_id: int) -> str:
    """The shop listing id shown in markup: ``L1001`` for post 1."""
    return f"L{1000 + post_id}"


def listing_number(listing: str) -> int | None:
    """Inverse of :func:`listing_id`; None when ``listing`` is not one."""
    digits = listing[1:]
    if not listing.startswith("L") or not digits.isdigit():
        return None
    return int(digits) - 1000


class _Server(ThreadingHTTPServer):
    # The listen backlog of a real site, not socketserver's 5: sixteen checks connecting at
    # once overflowed it, and the dropped connections waited out the SYN retry.
    request_queue_size = 128


def _handler_for(site: DemoSite) -> type[BaseHTTPRequestHandler]:
    """A request-handler class bound to ``site``."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "DemoSite/1.0"
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._answer(send_body=True)

        def do_HEAD(self) -> None:
            self._answer(send_body=False)

        def _answer(self, send_body: bool) -> None:
            response = site.respond(self.path)
            if response.delay > 0:
                time.sleep(response.delay)
            self.send_response(response.status)
            headers = {"Content-Type": response.content_type, **response.headers}
            if response.content_type.startswith("text/html"):
                headers.setdefault("Cache-Control", "no-store")
            headers["Content-Length"] = str(len(response.body))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if send_body:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(response.body)

        def log_message(self, format: str, *args: object) -> None:
            """Keep test and demo output quiet."""

    return Handler


def _html(text: str) -> _Response:
    return _Response(200, text.encode("utf-8"), HTML_TYPE)


def _not_found() -> _Response:
    body = "<!DOCTYPE html><html><head><title>404 Not Found</title></head>"
    body += "<body><h1>Not Found</h1></body></html>"
    return _Response(404, body.encode("utf-8"), HTML_TYPE)


def _iso_time(value: str | datetime | None) -> str:
    """A post time as UTC ISO with ``+00:00``; now (to the second) when not given."""
    if value is None:
        moment = datetime.now(UTC)
    elif isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    else:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def _image_size(data: bytes) -> tuple[int, int] | None:
    """Pixel size of encoded image bytes, or None when Pillow cannot read them."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except Exception:
        return None


def _copy(post: SitePost) -> SitePost:
    return replace(post, images=list(post.images), links=list(post.links))


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- page rendering ------------------------------------------------------------------------------
_TAIL_SVG = (
    '<svg class="bubble_icon" width="9px" height="20px" viewBox="0 0 9 20">'
    '<g fill="none"><path class="background" fill="#ffffff" d="M8,1 L9,1 L9,20 L8,20 L8,18 '
    "C7.807,15.161 7.124,12.233 5.950,9.218 C5.046,6.893 3.504,4.733 1.325,2.738 "
    'L1.325,2.738 C0.917,2.365 0.889,1.732 1.262,1.325 C1.451,1.118 1.718,1 2,1 L8,1 Z">'
    "</path></g></svg>"
)


def _index_page(feeds) -> str:
    """The site's front page: links to every channel and shop."""
    items = "".join(
        f'<li><a href="{_feed_path(f)}">{html.escape(f.title)}</a> ({f.kind})</li>' for f in feeds
    )
    return _document("Demo site", f"<h1>Demo site</h1><ul>{items}</ul>")


def _document(title: str, body: str, head: str = "", body_class: str = "") -> str:
    """A complete HTML page."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1.0">\n'
        f'{head}</head>\n<body class="{body_class}">\n{body}\n</body>\n</html>\n'
    )


def _feed_path(feed: _Feed) -> str:
    return f"/s/{quote(feed.name)}" if feed.kind == "channel" else f"/shop/{quote(feed.name)}"


def _page_window(feed: _Feed, before: int | None) -> list[SitePost]:
    """The (up to) 20 newest posts older than ``before``, oldest first, as t.me/s shows them."""
    ids = sorted(i for i in feed.posts if before is None or i < before)
    return [feed.posts[i] for i in ids[-PAGE_SIZE:]]


def _channel_page(feed: _Feed, site: DemoSite, before: int | None) -> str:
    """A channel preview in the markup of ``https://t.me/s/<channel>``."""
    base = site.base_url
    window = _page_window(feed, before)
    older = bool(window) and any(i < window[0].id for i in feed.posts)
    title = html.escape(feed.title)
    name = html.escape(feed.name)
    head = (
        f'<meta property="og:title" content="{title}">\n'
        f'<meta property="og:description" content="{_DESCRIPTION}">\n'
        f'<link rel="canonical" href="{base}/s/{name}">\n'
        f"<style>{_CHANNEL_CSS}</style>\n"
    )
    if older:
        head += f'<link rel="prev" href="/s/{name}?before={window[0].id}">\n'
    more = ""
    if older:
        more = (
            '<div class="tgme_widget_message_centered js-messages_more_wrap">'
            f'<a href="/s/{name}?before={window[0].id}" class="tme_messages_more '
            f'js-messages_more" data-before="{window[0].id}"></a></div>\n'
        )
    messages = "\n".join(_channel_post(feed, p, site) for p in window)
    body = (
        _channel_header(feed)
        + '<main class="tgme_main"><div class="tgme_container">'
        + '<section class="tgme_channel_history js-message_history">\n'
        + more
        + messages
        + "\n</section></div></main>"
    )
    return _document(f"{feed.title} – Telegram", body, head, "widget_frame_base tgme_webpreview")


_HISTORY = '<section class="tgme_channel_history js-message_history">'


def _scripted(page: str) -> str:
    """``page`` with its posts written in by a script after load, as sites built by scripts
    do: the HTML the server sends holds none (they travel base64-encoded)."""
    start = page.index(_HISTORY) + len(_HISTORY)
    end = page.index("</section>", start)
    encoded = base64.b64encode(page[start:end].encode("utf-8")).decode("ascii")
    script = (
        "<script>document.querySelector('.js-message_history').innerHTML = new TextDecoder()"
        f".decode(Uint8Array.from(atob('{encoded}'), (c) => c.charCodeAt(0)));</script>"
    )
    return page[:start] + page[end:].replace("</body>", script + "</body>", 1)


_DESCRIPTION = "Antiques, carvings and lucky charms. Worldwide shipping. DM for prices."

# Enough of t.me's widget stylesheet that the preview renders as a person sees it: photos are
# CSS backgrounds, and without sizes they paint nothing (a 20-post page of albums was a blank
# 107,000 px screenshot). Screenshots of the demo, and the benchmarks' page cost, need this.
_CHANNEL_CSS = (
    "body{margin:0;background:#e7ebf0;color:#000;"
    "font:14px/1.4 'Segoe UI',Roboto,Helvetica,Arial,sans-serif}"
    ".tgme_header{background:#fff;padding:10px 16px;border-bottom:1px solid #d7dbe0}"
    ".tgme_header a{color:#000;text-decoration:none;font-weight:600}"
    ".tgme_right_column,.tgme_main{max-width:720px;margin:12px auto;padding:0 8px}"
    ".tgme_channel_info{background:#fff;border-radius:10px;padding:16px;text-align:center}"
    ".tgme_channel_info_header_title{font-size:20px;font-weight:600}"
    ".tgme_channel_info_counters{display:flex;justify-content:center;gap:24px;margin-top:8px}"
    ".tgme_page_photo_image,.tgme_widget_message_user_photo{display:inline-block;width:44px;"
    "height:44px;border-radius:50%;background:#5eb5f7;flex:none}"
    ".tgme_widget_message_wrap{padding:6px 0}"
    ".tgme_widget_message{display:flex;gap:8px;align-items:flex-end}"
    ".tgme_widget_message_bubble{background:#fff;border-radius:12px;padding:8px 12px;"
    "width:640px;max-width:100%;box-shadow:0 1px 1px rgba(0,0,0,.12)}"
    ".tgme_widget_message_bubble_tail{display:none}"
    ".tgme_widget_message_author a{color:#2481cc;font-weight:600;text-decoration:none}"
    ".tgme_widget_message_photo_wrap{display:block;max-width:100%;margin:6px 0;"
    "background:#ccd no-repeat center/cover}"
    ".tgme_widget_message_grouped_wrap{max-width:100%;margin:6px 0}"
    ".tgme_widget_message_grouped{padding-top:0!important}"
    ".tgme_widget_message_grouped_layer{display:grid;grid-template-columns:repeat(4,1fr);gap:2px}"
    ".tgme_widget_message_grouped_layer .tgme_widget_message_photo_wrap{width:auto!important;"
    "margin:0}"
    ".tgme_widget_message_grouped_layer .tgme_widget_message_photo{padding-top:75%!important}"
    ".tgme_widget_message_text{margin:6px 0;overflow-wrap:anywhere}"
    ".tgme_widget_message_footer{color:#8c9aa8;font-size:12px;text-align:right}"
    ".tgme_widget_message_footer a{color:inherit;text-decoration:none;margin-left:6px}"
)


def _channel_header(feed: _Feed) -> str:
    """The page header and the ``tgme_channel_info`` block above the history."""
    title = html.escape(feed.title)
    name = html.escape(feed.name)
    initial = html.escape(feed.title[:1].upper() or "?")
    counters = "".join(
        f'<div class="tgme_channel_info_counter"><span class="counter_value">{value}</span> '
        f'<span class="counter_type">{kind}</span></div>'
        for value, kind in (("2.4K", "subscribers"), (str(len(feed.posts)), "photos"))
    )
    return (
        '<header class="tgme_header search_collapsed"><div class="tgme_header_info">'
        f'<a class="tgme_header_link" href="https://t.me/{name}">'
        f'<div class="tgme_header_title"><span dir="auto">{title}</span></div></a>'
        "</div></header>\n"
        '<section class="tgme_right_column"><div class="tgme_channel_info">'
        '<div class="tgme_channel_info_header">'
        f'<i class="tgme_page_photo_image bgcolor0" data-content="{initial}"></i>'
        f'<div class="tgme_channel_info_header_title"><span dir="auto">{title}</span></div>'
        f'<div class="tgme_channel_info_header_username"><a href="https://t.me/{name}">'
        f"@{name}</a></div></div>"
        f'<div class="tgme_channel_info_description">{_DESCRIPTION}</div>'
        f'<div class="tgme_channel_info_counters">{counters}</div>'
        "</div></section>\n"
    )


def _channel_post(feed: _Feed, post: SitePost, site: DemoSite) -> str:
    """One message in t.me/s markup."""
    base = site.base_url
    name = html.escape(feed.name)
    permalink = f"{base}/{name}/{post.id}"
    initial = html.escape(feed.title[:1].upper() or "?")
    author = html.escape(feed.title)
    return (
        '<div class="tgme_widget_message_wrap js-widget_message_wrap">'
        '<div class="tgme_widget_message text_not_supported_wrap js-widget_message" '
        f'data-post="{name}/{post.id}" data-view="{_view_token(post)}">\n'
        f'<div class="tgme_widget_message_user"><a href="https://t.me/{name}">'
        f'<i class="tgme_widget_message_user_photo bgcolor0" data-content="{initial}"></i>'
        "</a></div>\n"
        '<div class="tgme_widget_message_bubble">'
        f'<i class="tgme_widget_message_bubble_tail">{_TAIL_SVG}</i>\n'
        '<div class="tgme_widget_message_author accent_color">'
        f'<a class="tgme_widget_message_owner_name" href="https://t.me/{name}">'
        f'<span dir="auto">{author}</span></a></div>\n'
        f"{_channel_photos(post, permalink, site)}"
        f'<div class="tgme_widget_message_text js-message_text" dir="auto">{_post_html(post)}'
        "</div>\n"
        f"{_channel_footer(post, permalink)}"
        "</div></div></div>"
    )


def _channel_photos(post: SitePost, permalink: str, site: DemoSite) -> str:
    """The post's photos: one ``photo_wrap`` anchor, or a grouped album of them."""
    if not post.images:
        return ""
    if len(post.images) == 1:
        return _photo_anchor(post.images[0], permalink, site, grouped=False) + "\n"
    anchors = "".join(_photo_anchor(k, permalink, site, grouped=True) for k in post.images)
    return (
        '<div class="tgme_widget_message_grouped_wrap js-message_grouped_wrap" '
        'data-margin-w="2" data-margin-h="2" style="width:640px;">'
        '<div class="tgme_widget_message_grouped js-message_grouped" style="padding-top:75%">'
        f'<div class="tgme_widget_message_grouped_layer js-message_grouped_layer">{anchors}'
        "</div></div></div>\n"
    )


def _photo_anchor(key: str, permalink: str, site: DemoSite, grouped: bool) -> str:
    """One ``tgme_widget_message_photo_wrap`` anchor with the image as a CSS background."""
    width, height = site.image_size(key) or (640, 480)
    ratio = round(100 * height / width, 3) if width else 75
    kind = "grouped_media_wrap blured js-message_photo" if grouped else "5343 blured"
    return (
        f'<a class="tgme_widget_message_photo_wrap {kind}" href="{permalink}" '
        f"style=\"width:{min(width, 800)}px;background-image:url('{image_path(key)}')\">"
        f'<div class="tgme_widget_message_photo" style="padding-top:{ratio}%"></div></a>'
    )


def _channel_footer(post: SitePost, permalink: str) -> str:
    """Views, signature, "edited" and the dated permalink."""
    edited = '<span class="tgme_widget_message_meta">edited </span>' if post.edited else ""
    signature = ""
    if post.author:
        signature = (
            '<span class="tgme_widget_message_from_author" dir="auto">'
            f"{html.escape(post.author)}</span>&nbsp;"
        )
    return (
        '<div class="tgme_widget_message_footer compact js-message_footer">'
        '<div class="tgme_widget_message_info short js-message_info">'
        f'{signature}<span class="tgme_widget_message_views">{_views(post)}</span>'
        f'<span class="copyonclick">{edited}</span>'
        f'<span class="tgme_widget_message_meta"><a class="tgme_widget_message_date" '
        f'href="{permalink}"><time datetime="{post.posted_at}" class="time">'
        f"{_clock(post.posted_at)}</time></a></span></div></div>"
    )


def _post_html(post: SitePost) -> str:
    """Escaped post text: newlines as ``<br/>``, URLs (and extra ``links``) as anchors."""
    text = post.text
    extra = [link for link in post.links if link not in text]
    if extra:
        text = text + "\n" + "\n".join(extra)
    pieces: list[str] = []
    last = 0
    for match in _URL.finditer(text):
        pieces.append(html.escape(text[last : match.start()]))
        url = html.escape(match.group(0))
        pieces.append(f'<a href="{url}" target="_blank" rel="noopener">{url}</a>')
        last = match.end()
    pieces.append(html.escape(text[last:]))
    return "".join(pieces).replace("\r\n", "\n").replace("\n", "<br/>")


def _views(post: SitePost) -> str:
    """A plausible, stable view count."""
    count = 180 + (post.id * 7919) % 2300
    return f"{count / 1000:.1f}K" if count >= 1000 else str(count)


def _view_token(post: SitePost) -> str:
    return f"eyJjIjotMTAwMTk{post.id:05d}NTY0LCJwIjoiMjAifQ"


def _clock(iso: str) -> str:
    """``00:30`` from an ISO time."""
    try:
        return datetime.fromisoformat(iso).strftime("%H:%M")
    except ValueError:
        return ""


def _shop_page(feed: _Feed, site: DemoSite) -> str:
    """A marketplace seller page: every listing, newest first."""
    listings = "\n".join(_listing(feed, p) for p in sorted(feed.posts.values(), key=_newest))
    title = html.escape(feed.title)
    body = (
        f'<header class="shop-header"><h1 class="shop-name">{title}</h1>'
        f'<p class="shop-handle">@{html.escape(feed.name)} · {len(feed.posts)} listings</p>'
        f'</header>\n<main class="listings">\n{listings}\n</main>'
    )
    head = f'<link rel="canonical" href="{site.base_url}{_feed_path(feed)}">\n'
    return _document(f"{feed.title} – seller page", body, head, "shop")


def _item_page(feed: _Feed, post: SitePost, site: DemoSite) -> str:
    """The page of one listing (same markup as on the seller page)."""
    body = (
        f'<nav><a class="back" href="{_feed_path(feed)}">{html.escape(feed.title)}</a></nav>\n'
        f'<main class="item">{_listing(feed, post)}</main>'
    )
    head = f'<link rel="canonical" href="{site.base_url}{_item_path(feed, post)}">\n'
    return _document(f"{_first_line(post.text)} – {feed.title}", body, head, "shop item")


def _listing(feed: _Feed, post: SitePost) -> str:
    """One listing: title (first line), description, seller, time and photos."""
    photos = "".join(f'<img src="{image_path(k)}" alt="">' for k in post.images)
    edited = '<span class="edited">(edited)</span>' if post.edited else ""
    seller = html.escape(post.author or feed.title)
    return (
        f'<div class="listing" data-id="{listing_id(post.id)}">'
        f'<h3 class="title"><a class="permalink" href="{_item_path(feed, post)}">'
        f"{html.escape(_first_line(post.text))}</a></h3>"
        f'<div class="desc">{_post_html(post)}</div>'
        f'<span class="seller">{seller}</span>'
        f'<time datetime="{post.posted_at}">{_day(post.posted_at)}</time>{edited}'
        f'<div class="photos">{photos}</div></div>'
    )


def _item_path(feed: _Feed, post: SitePost) -> str:
    return f"/shop/{quote(feed.name)}/item/{listing_id(post.id)}"


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _day(iso: str) -> str:
    """``23 Nov 2026 00:30`` from an ISO time."""
    try:
        return datetime.fromisoformat(iso).strftime("%d %b %Y %H:%M")
    except ValueError:
        return ""


def _newest(post: SitePost) -> tuple[int]:
    return (-post.id,)
