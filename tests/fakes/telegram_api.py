"""A fake Telegram Bot API server for tests.

:class:`FakeTelegram` runs a real HTTP server on ``127.0.0.1`` (stdlib
:class:`~http.server.ThreadingHTTPServer` in a daemon thread) that speaks the Bot API wire
format, so an unmodified ``telegram.Bot`` can talk to it::

    with FakeTelegram() as fake:
        bot = Bot(fake.token, base_url=f"{fake.base_url}/bot",
                  base_file_url=f"{fake.base_url}/file/bot")

Every request is recorded in :attr:`FakeTelegram.calls`. Like Telegram, the fake refuses with
400 what Telegram refuses: HTML that does not parse under Telegram's rules (only its tags,
every tag closed), a text over 4,096 or a caption over 1,024 characters of visible text after
parsing (UTF-16 code units), a photo that does not decode or has impossible proportions
(width + height over 10,000, one side over 20 times the other). Failures (HTTP errors, rate limits,
permanent per-chat errors, a server that is down) can be injected, and incoming updates can be
queued for ``getUpdates``. The server never logs anything, so the bot token never ends up in
test output.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import re
import socket
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import collapse_rfc2231_value
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

JSONDict = dict[str, Any]

#: Methods that deliver a message to a chat (subject to rate limiting).
SEND_METHODS = frozenset({"sendMessage", "sendPhoto", "sendMediaGroup", "sendDocument"})
BOT_USERNAME = "watcher_test_bot"
BOT_FIRST_NAME = "Watcher Test Bot"
#: Upper bound for a ``getUpdates`` long poll, whatever ``timeout`` the client asks for.
MAX_POLL_SECONDS = 1.0
MEDIA_GROUP_MIN, MEDIA_GROUP_MAX = 2, 10
TEXT_LIMIT, CAPTION_LIMIT = 4096, 1024  # visible characters after parsing, in UTF-16 units
PHOTO_MAX_BYTES = 10 * 1024 * 1024
PHOTO_MAX_SIDES, PHOTO_MAX_RATIO = 10_000, 20
#: The tags Telegram's HTML parse mode accepts (tdlib ``parse_html``); anything else is a 400.
HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}

_API_PATH = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>[A-Za-z]+)/?$")
_FILE_PATH = re.compile(r"^/file/bot(?P<token>[^/]+)/(?P<path>.+)$")


@dataclass
class RecordedFile:
    """A file uploaded in a multipart request (content is summarised, not kept here)."""

    field: str
    filename: str
    size: int
    sha256: str
    content_type: str


@dataclass
class RecordedCall:
    """One request to a Bot API method, as seen by the fake server.

    ``fields`` holds every non-file parameter as text: plain strings as sent, nested values
    (``reply_markup``, ``media``, ...) as their JSON text. ``status`` is the HTTP status the fake
    answered with (200 on success).
    """

    method: str
    token: str = field(repr=False)
    fields: dict[str, str]
    files: dict[str, RecordedFile]
    at: float
    status: int = HTTPStatus.OK

    @property
    def ok(self) -> bool:
        """Whether the fake answered this call successfully."""
        return self.status == HTTPStatus.OK

    def json(self, name: str) -> Any:
        """Decode the JSON text of field ``name`` (e.g. ``reply_markup`` or ``media``)."""
        return json.loads(self.fields[name])


class ApiError(Exception):
    """A Bot API error answer: ``{"ok": false, "error_code": ..., "description": ...}``."""

    def __init__(self, code: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def payload(self) -> JSONDict:
        """The JSON body Telegram would send for this error."""
        body: JSONDict = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


@dataclass
class _Upload:
    """A file part of a multipart body."""

    field: str
    filename: str
    content_type: str
    data: bytes

    def record(self) -> RecordedFile:
        return RecordedFile(
            field=self.field,
            filename=self.filename,
            size=len(self.data),
            sha256=hashlib.sha256(self.data).hexdigest(),
            content_type=self.content_type,
        )


@dataclass
class _StoredFile:
    """A file known to the fake: uploaded by the bot or pushed by a test."""

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    filename: str
    mime_type: str

    def file_object(self) -> JSONDict:
        """The Bot API ``File`` object returned by ``getFile``."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
            "file_path": self.file_path,
        }


@dataclass
class _Response:
    status: int
    body: bytes
    content_type: str = "application/json"


# --------------------------------------------------------------------------- body parsing


def _header_message(raw_headers: bytes) -> Message:
    """Parse MIME headers with the stdlib email parser (handles quoting and RFC 2231)."""
    return BytesHeaderParser(policy=policy.HTTP).parsebytes(raw_headers + b"\r\n\r\n")


def _param(headers: Message, name: str, header: str) -> str | None:
    value = headers.get_param(name, header=header)
    return None if value is None else str(collapse_rfc2231_value(value))


def parse_body(content_type: str | None, body: bytes) -> tuple[dict[str, str], dict[str, _Upload]]:
    """Split a request body into text fields and uploaded files.

    Supports ``application/json``, ``multipart/form-data`` and
    ``application/x-www-form-urlencoded`` (the last one also for bodies without a content type).
    """
    if not body:
        return {}, {}
    headers = _header_message(f"Content-Type: {content_type or ''}".encode("latin-1"))
    kind = headers.get_content_type() if content_type else "application/x-www-form-urlencoded"
    if kind == "application/json":
        return _parse_json_fields(body), {}
    if kind == "multipart/form-data":
        boundary = _param(headers, "boundary", "content-type")
        if not boundary:
            raise ApiError(400, "Bad Request: multipart body without boundary")
        return _parse_multipart(body, boundary)
    if kind == "application/x-www-form-urlencoded":
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True)), {}
    raise ApiError(400, f"Bad Request: unsupported content type {kind}")


def _parse_json_fields(body: bytes) -> dict[str, str]:
    try:
        decoded = json.loads(body)
    except ValueError as exc:
        raise ApiError(400, "Bad Request: can't parse JSON body") from exc
    if not isinstance(decoded, dict):
        raise ApiError(400, "Bad Request: JSON body must be an object")
    return {
        key: value if isinstance(value, str) else json.dumps(value)
        for key, value in decoded.items()
        if value is not None
    }


def _parse_multipart(body: bytes, boundary: str) -> tuple[dict[str, str], dict[str, _Upload]]:
    """Parse ``multipart/form-data`` exactly (binary safe; no line-ending normalisation)."""
    fields: dict[str, str] = {}
    files: dict[str, _Upload] = {}
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    for segment in (b"\r\n" + body).split(delimiter)[1:]:
        if segment.startswith(b"--"):
            break
        _, _, part = segment.partition(b"\r\n")  # drop transport padding after the boundary
        raw_headers, separator, content = part.partition(b"\r\n\r\n")
        if not separator:
            raise ApiError(400, "Bad Request: malformed multipart body")
        headers = _header_message(raw_headers)
        name = _param(headers, "name", "content-disposition")
        if name is None:
            raise ApiError(400, "Bad Request: multipart part without a name")
        filename = _param(headers, "filename", "content-disposition")
        if filename is None:
            fields[name] = content.decode("utf-8")
        else:
            mime = headers.get_content_type() if "content-type" in headers else ""
            files[name] = _Upload(name, filename, mime or "application/octet-stream", content)
    return fields, files


# --------------------------------------------------------------------------- Telegram's checks


def _entities_error(reason: str) -> ApiError:
    return ApiError(400, f"Bad Request: can't parse entities: {reason}")


def parse_html(text: str) -> str:
    """The visible text of ``text`` in Telegram's HTML parse mode, or ApiError as Telegram
    answers it. Follows tdlib's ``parse_html``: only Telegram's tags, each closed in order;
    ``&lt; &gt; &amp; &quot;`` and numeric entities are decoded, any other ``&`` is text."""
    out: list[str] = []
    stack: list[str] = []
    i, size = 0, len(text)

    def offset(index: int) -> int:
        return len(text[:index].encode("utf-8"))

    while i < size:
        char = text[i]
        if char == "&":
            decoded, length = _html_entity(text, i)
            if decoded is not None:
                out.append(decoded)
                i += length
                continue
        if char != "<":
            out.append(char)
            i += 1
            continue
        begin = i
        i += 1
        if i < size and text[i] == "/":
            if not stack:
                raise _entities_error(f"Unexpected end tag at byte offset {offset(begin)}")
            i += 1
            start = i
            while i < size and not text[i].isspace() and text[i] != ">":
                i += 1
            name = text[start:i].lower()
            while i < size and text[i].isspace():
                i += 1
            if i >= size or text[i] != ">":
                raise _entities_error(f"Unclosed end tag at byte offset {offset(begin)}")
            expected = stack.pop()
            if name and name != expected:
                raise _entities_error(
                    f'Unmatched end tag at byte offset {offset(begin)}, expected "</{expected}>", '
                    f'found "</{name}>"'
                )
            i += 1
            continue
        start = i
        while i < size and not text[i].isspace() and text[i] != ">":
            i += 1
        if i >= size:
            raise _entities_error(f"Unclosed start tag at byte offset {offset(begin)}")
        name = text[start:i].lower()
        if name not in HTML_TAGS:
            raise _entities_error(f'Unsupported start tag "{name}" at byte offset {offset(begin)}')
        close = _tag_end(text, i)
        if close is None:
            raise _entities_error(f"Unclosed start tag at byte offset {offset(begin)}")
        attributes = dict(
            (k.lower(), v if v is not None else w)
            for k, v, w in re.findall(r'([^\s=]+)\s*=\s*(?:"([^"]*)"|\'([^\']*)\')', text[i:close])
        )
        if name == "span" and attributes.get("class") != "tg-spoiler":
            raise _entities_error('Tag "span" must have class "tg-spoiler"')
        stack.append(name)
        i = close + 1
    if stack:
        raise _entities_error(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)


def _tag_end(text: str, i: int) -> int | None:
    """Index of the ``>`` ending a start tag whose attributes begin at ``i`` (quotes respected)."""
    quote = None
    for index in range(i, len(text)):
        char = text[index]
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == ">":
            return index
    return None


def _html_entity(text: str, i: int) -> tuple[str | None, int]:
    """The character of the entity at ``text[i]`` (``&...;``) and its length, or (None, 0)."""
    match = re.match(r"&(#[0-9]{1,8}|#[xX][0-9a-fA-F]{1,7}|[A-Za-z]{1,10});", text[i : i + 16])
    if not match:
        return None, 0
    body = match.group(1)
    if body.startswith(("#x", "#X")):
        code = int(body[2:], 16)
    elif body.startswith("#"):
        code = int(body[1:])
    else:
        named = _NAMED_ENTITIES.get(body)
        return (named, len(match.group(0))) if named else (None, 0)
    if not 0 < code <= 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None, 0
    return chr(code), len(match.group(0))


def utf16_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def visible_text(fields: dict[str, Any], name: str) -> str:
    """``fields[name]`` as the chat would show it (parsed per ``parse_mode``), or ApiError."""
    raw = str(fields.get(name) or "")
    mode = str(fields.get("parse_mode") or "").lower()
    if mode == "html":
        return parse_html(raw)
    if mode:
        raise ApiError(400, f"Bad Request: unsupported parse_mode {fields.get('parse_mode')}")
    return raw


def check_caption(fields: dict[str, Any]) -> None:
    """A caption longer than Telegram allows (after parsing) is refused."""
    if utf16_length(visible_text(fields, "caption").strip()) > CAPTION_LIMIT:
        raise ApiError(400, "Bad Request: message caption is too long")


def check_text(fields: dict[str, Any]) -> None:
    """A message text that is empty or too long after parsing is refused."""
    shown = visible_text(fields, "text").strip()
    if not shown:
        raise ApiError(400, "Bad Request: message text is empty")
    if utf16_length(shown) > TEXT_LIMIT:
        raise ApiError(400, "Bad Request: message is too long")


def check_photo(data: bytes) -> None:
    """Telegram's rules for a photo: at most 10 MB, an image that decodes, width + height at
    most 10,000 and neither side over 20 times the other."""
    if len(data) > PHOTO_MAX_BYTES:
        raise ApiError(400, "Bad Request: file is too big")
    width, height = _image_size(data, decode=True)
    if not width or not height:
        raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")
    if width + height > PHOTO_MAX_SIDES or max(width, height) > PHOTO_MAX_RATIO * min(
        width, height
    ):
        raise ApiError(400, "Bad Request: PHOTO_INVALID_DIMENSIONS")


# --------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    """HTTP server that tracks open connections so it can drop them when going down."""

    daemon_threads = True

    def __init__(self, port: int, fake: FakeTelegram) -> None:
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay silent: tracebacks would be noise (and must never carry request paths)."""

    def drop_connections(self) -> None:
        """Abort every open (keep-alive) connection."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Reads a request, hands it to :meth:`FakeTelegram.route`, writes the response."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Never log: request lines contain the bot token."""

    def do_POST(self) -> None:
        body = self._read_body()
        response = self.server.fake.route(self.path, self.headers.get("Content-Type"), body)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    do_GET = do_POST

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(chunks)


def _json_response(status: int, payload: object) -> _Response:
    return _Response(status, json.dumps(payload).encode("utf-8"))


def _status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _chat_id_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _require_chat_id(fields: dict[str, str]) -> int:
    chat_id = _chat_id_or_none(fields.get("chat_id"))
    if chat_id is None:
        raise ApiError(400, "Bad Request: chat not found")
    return chat_id


def _optional_json(fields: dict[str, str], name: str) -> Any:
    if name not in fields:
        return None
    try:
        return json.loads(fields[name])
    except ValueError as exc:
        raise ApiError(400, f"Bad Request: can't parse {name} JSON object") from exc


def _user(user_id: int, first_name: str | None = None) -> JSONDict:
    return {"id": user_id, "is_bot": False, "first_name": first_name or f"User {user_id}"}


def _chat(chat_id: int) -> JSONDict:
    """A ``Chat`` object: negative ids are groups, positive ids private chats."""
    if chat_id < 0:
        return {"id": chat_id, "type": "group", "title": f"Test group {chat_id}"}
    return {"id": chat_id, "type": "private", "first_name": f"User {chat_id}"}


def _command_entities(text: str) -> list[JSONDict]:
    if not text.startswith("/"):
        return []
    return [{"type": "bot_command", "offset": 0, "length": len(text.split(maxsplit=1)[0])}]


# --------------------------------------------------------------------------- the fake


class FakeTelegram:
    """In-process fake of the Telegram Bot API (see the module docstring)."""

    def __init__(self, token: str = "123456:TEST-TOKEN", port: int = 0) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.calls: list[RecordedCall] = []
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self._updates_changed = threading.Condition(self._lock)
        self._closing = False
        self._failures: deque[int] = deque()
        self._rate_limits: deque[int] = deque()
        self._chat_errors: dict[int, ApiError] = {}
        self._updates: list[JSONDict] = []
        self._last_update_id = 0
        self._message_ids: defaultdict[int, int] = defaultdict(int)
        self._messages: dict[tuple[int, int], JSONDict] = {}
        self._files: dict[str, _StoredFile] = {}
        self._file_counter = itertools.count(1)
        self._callback_counter = itertools.count(1)
        self._media_group_counter = itertools.count(1)
        self._commands: dict[str, Any] = {}
        self._handlers: dict[str, Callable[[dict[str, str], dict[str, _Upload]], Any]] = {
            "getMe": self._get_me,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "sendMediaGroup": self._send_media_group,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "answerCallbackQuery": self._answer_callback_query,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteWebhook": lambda fields, uploads: True,
            "getUpdates": self._get_updates,
            "getFile": self._get_file,
        }
        self._canonical = {name.lower(): name for name in self._handlers}

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (the port is known once the server has started)."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def port(self) -> int:
        """The TCP port the server listens on (stable across :meth:`go_down`/:meth:`come_back`)."""
        return self._port

    def start(self) -> FakeTelegram:
        """Start listening (no-op if already up) and return ``self``."""
        if self._server is None:
            with self._lock:
                self._closing = False
            self._server = _Server(self._port, self)
            self._port = self._server.server_address[1]
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"fake-telegram-{self._port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the server and drop all open connections (no-op if already down)."""
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None:
            return
        server.shutdown()
        with self._lock:
            self._closing = True
            self._updates_changed.notify_all()
        server.drop_connections()
        server.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def go_down(self) -> None:
        """Close the listening socket and live connections: new connections are refused."""
        self.stop()

    def come_back(self) -> None:
        """Listen again, on the same port as before."""
        self.start()

    # ------------------------------------------------------------------ inspection

    def calls_to(self, method: str) -> list[RecordedCall]:
        """All recorded calls to ``method`` (including failed ones)."""
        with self._lock:
            return [call for call in self.calls if call.method == method]

    def sent_messages(
        self, chat_id: int | None = None, *, include_failed: bool = False
    ) -> list[RecordedCall]:
        """Calls to any ``send*`` method, optionally only those to ``chat_id``.

        Only successfully answered calls are returned unless ``include_failed`` is true, so the
        result is what actually reached the chat.
        """
        with self._lock:
            calls = list(self.calls)
        return [
            call
            for call in calls
            if call.method in SEND_METHODS
            and (include_failed or call.ok)
            and (chat_id is None or _chat_id_or_none(call.fields.get("chat_id")) == chat_id)
        ]

    # ------------------------------------------------------------------ failure injection

    def fail_next(self, n: int, status: int = 502) -> None:
        """Answer the next ``n`` requests (any method but ``getMe``) with HTTP ``status``."""
        with self._lock:
            self._failures.extend([status] * n)

    def rate_limit_next(self, n: int, retry_after: int = 1) -> None:
        """Answer the next ``n`` ``send*`` requests with 429 and ``retry_after``."""
        with self._lock:
            self._rate_limits.extend([retry_after] * n)

    def permanent_error_for_chat(
        self, chat_id: int, description: str = "Bad Request: chat not found", code: int = 400
    ) -> None:
        """Answer every request addressed to ``chat_id`` with this error, forever."""
        with self._lock:
            self._chat_errors[chat_id] = ApiError(code, description)

    # ------------------------------------------------------------------ updates

    def push_update(self, update: dict) -> None:
        """Queue a raw update for ``getUpdates`` (``update_id`` is assigned if missing)."""
        with self._updates_changed:
            if "update_id" not in update:
                update["update_id"] = self._last_update_id + 1
            self._last_update_id = max(self._last_update_id, update["update_id"])
            self._updates.append(update)
            self._updates_changed.notify_all()

    def push_message(self, text: str, user_id: int, chat_id: int, **extra: Any) -> dict:
        """Queue a text message from a user; ``/commands`` get a ``bot_command`` entity."""
        content: JSONDict = {"text": text}
        if entities := _command_entities(text):
            content["entities"] = entities
        message = self._new_message(chat_id, _user(user_id), {**content, **extra})
        return self._push({"message": message})

    def push_photo(
        self, photo_bytes: bytes, user_id: int, chat_id: int, caption: str | None = None
    ) -> dict:
        """Queue a photo message from a user; the bytes are downloadable via ``getFile``."""
        stored = self._store_file(photo_bytes, "photo.jpg", "image/jpeg", folder="photos")
        content: JSONDict = {"photo": self._photo_sizes(stored)}
        if caption is not None:
            content["caption"] = caption
        message = self._new_message(chat_id, _user(user_id), content)
        return self._push({"message": message})

    def push_callback(self, data: str, user_id: int, chat_id: int, message_id: int) -> dict:
        """Queue an inline-button press on message ``message_id`` (ideally one the bot sent)."""
        with self._lock:
            message = self._messages.get((chat_id, message_id))
        if message is None:
            message = {"message_id": message_id, "date": int(time.time()), "chat": _chat(chat_id)}
        query = {
            "id": str(next(self._callback_counter)),
            "from": _user(user_id),
            "message": message,
            "chat_instance": str(abs(chat_id)),
            "data": data,
        }
        return self._push({"callback_query": query})

    def _push(self, update: JSONDict) -> JSONDict:
        self.push_update(update)
        return update

    # ------------------------------------------------------------------ request routing

    def route(self, raw_path: str, content_type: str | None, body: bytes) -> _Response:
        """Answer one HTTP request (called from server threads)."""
        path, _, query = raw_path.partition("?")
        path = unquote(path)
        if match := _API_PATH.match(path):
            return self._api_request(match["token"], match["method"], query, content_type, body)
        if match := _FILE_PATH.match(path):
            return self._file_download(match["token"], match["path"])
        return _json_response(404, ApiError(404, "Not Found").payload())

    def _api_request(
        self, token: str, method: str, query: str, content_type: str | None, body: bytes
    ) -> _Response:
        method = self._canonical.get(method.lower(), method)
        call = RecordedCall(method, token, {}, {}, time.monotonic())
        try:
            fields, uploads = parse_body(content_type, body)
            call.fields = {**dict(parse_qsl(query, keep_blank_values=True)), **fields}
            call.files = {name: upload.record() for name, upload in uploads.items()}
            status, payload = 200, {"ok": True, "result": self._execute(call, uploads)}
        except ApiError as error:
            status, payload = error.code, error.payload()
        call.status = status
        with self._lock:
            self.calls.append(call)
        return _json_response(status, payload)

    def _execute(self, call: RecordedCall, uploads: dict[str, _Upload]) -> Any:
        if call.token != self.token:
            raise ApiError(401, "Unauthorized")
        handler = self._handlers.get(call.method)
        if handler is None:
            raise ApiError(404, "Not Found")
        self._raise_injected_failure(call)
        return handler(call.fields, uploads)

    def _raise_injected_failure(self, call: RecordedCall) -> None:
        with self._lock:
            if call.method != "getMe" and self._failures:
                status = self._failures.popleft()
                raise ApiError(status, _status_phrase(status))
            if call.method in SEND_METHODS and self._rate_limits:
                seconds = self._rate_limits.popleft()
                raise ApiError(
                    429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds}
                )
            chat_error = self._chat_errors.get(_chat_id_or_none(call.fields.get("chat_id")) or 0)
        if chat_error is not None:
            raise ApiError(chat_error.code, chat_error.description)

    def _file_download(self, token: str, file_path: str) -> _Response:
        if token != self.token:
            return _json_response(401, ApiError(401, "Unauthorized").payload())
        with self._lock:
            stored = next((f for f in self._files.values() if f.file_path == file_path), None)
        if stored is None:
            return _json_response(404, ApiError(404, "Not Found").payload())
        return _Response(200, stored.data, stored.mime_type)

    # ------------------------------------------------------------------ object builders

    def _bot_user(self) -> JSONDict:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": BOT_FIRST_NAME,
            "username": BOT_USERNAME,
        }

    def _new_message(self, chat_id: int, sender: JSONDict, content: JSONDict) -> JSONDict:
        """Create and remember a message; ids increase per chat (shared by bot and users)."""
        with self._lock:
            self._message_ids[chat_id] += 1
            message = {
                "message_id": self._message_ids[chat_id],
                "from": sender,
                "chat": _chat(chat_id),
                "date": int(time.time()),
                **content,
            }
            self._messages[(chat_id, message["message_id"])] = message
        return message

    def _bot_message(self, chat_id: int, content: JSONDict, fields: dict[str, str]) -> JSONDict:
        if (markup := _optional_json(fields, "reply_markup")) is not None:
            content["reply_markup"] = markup
        return self._new_message(chat_id, self._bot_user(), content)

    def _store_file(self, data: bytes, filename: str, mime_type: str, folder: str) -> _StoredFile:
        number = next(self._file_counter)
        extension = filename.rsplit(".", 1)[-1] if "." in filename else "bin"
        stored = _StoredFile(
            file_id=f"FAKE-FILE-{number}",
            file_unique_id=f"FAKE-UNIQUE-{number}",
            file_path=f"{folder}/file_{number}.{extension}",
            data=data,
            filename=filename,
            mime_type=mime_type,
        )
        with self._lock:
            self._files[stored.file_id] = stored
        return stored

    def _resolve_file(
        self, reference: str | None, uploads: dict[str, _Upload], field_name: str, folder: str
    ) -> _StoredFile:
        """Find the file for a parameter: a direct upload, ``attach://name``, or a file_id/URL."""
        upload = uploads.get(field_name)
        if reference and reference.startswith("attach://"):
            upload = uploads.get(reference.removeprefix("attach://"))
            if upload is None:
                raise ApiError(400, f"Bad Request: file {reference} not found in request")
        if upload is not None:
            return self._store_file(upload.data, upload.filename, upload.content_type, folder)
        if not reference:
            raise ApiError(400, f"Bad Request: there is no {field_name} in the request")
        with self._lock:
            known = self._files.get(reference)
        return known or self._store_file(b"", reference.rsplit("/", 1)[-1], "", folder)

    @staticmethod
    def _photo_sizes(stored: _StoredFile) -> list[JSONDict]:
        width, height = _image_size(stored.data)
        return [
            {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "width": width,
                "height": height,
                "file_size": len(stored.data),
            }
        ]

    @staticmethod
    def _document(stored: _StoredFile) -> JSONDict:
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_name": stored.filename,
            "mime_type": stored.mime_type or "application/octet-stream",
            "file_size": len(stored.data),
        }

    def _media_content(self, kind: str, stored: _StoredFile) -> JSONDict:
        if kind == "photo":
            return {"photo": self._photo_sizes(stored)}
        if kind == "video":
            width, height = _image_size(stored.data)
            video = {"width": width, "height": height, "duration": 0}
            return {"video": {**self._document(stored), **video}}
        return {"document": self._document(stored)}

    # ------------------------------------------------------------------ method handlers

    def _get_me(self, fields: dict[str, str], uploads: dict[str, _Upload]) -> JSONDict:
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _send_message(self, fields: dict[str, str], uploads: dict[str, _Upload]) -> JSONDict:
        chat_id = _require_chat_id(fields)
        check_text(fields)
        return self._bot_message(chat_id, {"text": fields.get("text", "")}, fields)

    def _send_photo(self, fields: dict[str, str], uploads: dict[str, _Upload]) -> JSONDict:
        chat_id = _require_chat_id(fields)
        stored = self._resolve_file(fields.get("photo"), uploads, "photo", "photos")
        check_photo(stored.data)
        check_caption(fields)
        return self._bot_message(chat_id, self._captioned("photo", stored, fields), fields)

    def _send_document(self, fields: dict[str, str], uploads: dict[str, _Upload]) -> JSONDict:
        chat_id = _require_chat_id(fields)
        stored = self._resolve_file(fields.get("document"), uploads, "document", "documents")
        check_caption(fields)
        return self._bot_message(chat_id, self._captioned("document", stored, fields), fields)

    def _captioned(self, kind: str, stored: _StoredFile, item: dict[str, Any]) -> JSONDict:
        content = self._media_content(kind, stored)
        if item.get("caption"):
            content["caption"] = item["caption"]
        return content

    def _send_media_group(self, fields: dict[str, str], uploads: dict[str, _Upload]) -> list:
        chat_id = _require_chat_id(fields)
        media = _optional_json(fields, "media")
        if not isinstance(media, list) or not MEDIA_GROUP_MIN <= len(media) <= MEDIA_GROUP_MAX:
            raise ApiError(400, "Bad Request: wrong number of media specified")
        group_id = f"FAKE-GROUP-{next(self._media_group_counter)}"
        resolved = []
        for item in media:  # all checked before any is sent: Telegram sends a group whole
            kind = item.get("type", "document")
            stored = self._resolve_file(item.get("media"), uploads, "media", f"{kind}s")
            if kind == "photo":
                check_photo(stored.data)
            check_caption(item)
            resolved.append((item, kind, stored))
        messages = []
        for item, kind, stored in resolved:
            content = {**self._captioned(kind, stored, item), "media_group_id": group_id}
            messages.append(self._new_message(chat_id, self._bot_user(), content))
        return messages

    def _edited_message(self, fields: dict[str, str]) -> JSONDict | None:
        """The stored message addressed by ``chat_id``/``message_id`` (None for inline ones)."""
        if "inline_message_id" in fields:
            return None
        chat_id = _require_chat_id(fields)
        message_id = _chat_id_or_none(fields.get("message_id"))
        with self._lock:
            message = self._messages.get((chat_id, message_id or 0))
        if message is None or message["from"].get("id") != self.bot_id:
            raise ApiError(400, "Bad Request: message to edit not found")
        return message

    def _apply_edit(self, message: JSONDict | None, changes: JSONDict, fields: dict) -> Any:
        if message is None:
            return True
        with self._lock:
            message.update(changes, edit_date=int(time.time()))
            markup = _optional_json(fields, "reply_markup")
            if markup is None:
                message.pop("reply_markup", None)
            else:
                message["reply_markup"] = markup
            return dict(message)

    def _edit_message_text(self, fields: dict[str, str], uploads: dict[str, _Upload]) -> Any:
        message = self._edited_message(fields)
        check_text(fields)
        return self._apply_edit(message, {"text": fields["text"]}, fields)

    def _edit_message_reply_markup(
        self, fields: dict[str, str], uploads: dict[str, _Upload]
    ) -> Any:
        return self._apply_edit(self._edited_message(fields), {}, fields)

    def _answer_callback_query(self, fields: dict[str, str], uploads: dict[str, _Upload]) -> bool:
        if not fields.get("callback_query_id"):
            raise ApiError(400, "Bad Request: query is too old and response timeout expired")
        return True

    @staticmethod
    def _commands_key(fields: dict[str, str]) -> str:
        return f"{fields.get('scope', '')}|{fields.get('language_code', '')}"

    def _set_my_commands(self, fields: dict[str, str], uploads: dict[str, _Upload]) -> bool:
        commands = _optional_json(fields, "commands")
        if not isinstance(commands, list):
            raise ApiError(400, "Bad Request: commands must be an array")
        with self._lock:
            self._commands[self._commands_key(fields)] = commands
        return True

    def _get_my_commands(self, fields: dict[str, str], uploads: dict[str, _Upload]) -> list:
        with self._lock:
            return list(self._commands.get(self._commands_key(fields), []))

    def _get_file(self, fields: dict[str, str], uploads: dict[str, _Upload]) -> JSONDict:
        with self._lock:
            stored = self._files.get(fields.get("file_id", ""))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        return stored.file_object()

    def _get_updates(self, fields: dict[str, str], uploads: dict[str, _Upload]) -> list:
        """Serve queued updates, long-polling up to ``min(timeout, MAX_POLL_SECONDS)``."""
        offset = int(fields.get("offset") or 0)
        limit = min(max(int(fields.get("limit") or 100), 1), 100)
        deadline = time.monotonic() + min(float(fields.get("timeout") or 0), MAX_POLL_SECONDS)
        with self._updates_changed:
            self._confirm_updates(offset)
            while not self._updates and not self._closing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._updates_changed.wait(remaining)
            return [dict(update) for update in self._updates[:limit]]

    def _confirm_updates(self, offset: int) -> None:
        """Forget updates confirmed by ``offset`` (negative: keep only the last ``-offset``)."""
        if offset < 0:
            self._updates = self._updates[offset:]
        elif offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]


def _image_size(data: bytes, decode: bool = False) -> tuple[int, int]:
    """Pixel size of an image via Pillow when it can be read (with ``decode``: decoded in
    full, as Telegram does before it takes a photo), else ``(0, 0)``."""
    try:
        from io import BytesIO

        from PIL import Image

        with Image.open(BytesIO(data)) as image:
            if decode:
                image.load()
            return image.size
    except Exception:  # any unreadable upload is "not an image", as Telegram sees it
        return 0, 0
