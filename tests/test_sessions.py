"""Sessions: cookie imports, private files, the session's profile in a real Chromium, checks."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import pytest

from tests.conftest import watcher
from watcher.capture.browser import Browser
from watcher.capture.sessions import (
    Session,
    SessionLocks,
    SessionStore,
    refreshed_state,
)
from watcher.commands.session import login_wall
from watcher.demo.site import DemoSite
from watcher.errors import WatcherError
from watcher.secrets import REDACTED

SID = "sid-9f3a7c1e5b2d4a68"  # long enough to be registered as a secret
CSRF = "csrf-77d1e0b4c9a2f513"

EXTENSION_JSON = [
    {
        "domain": ".example.org",
        "hostOnly": False,
        "name": "sid",
        "value": SID,
        "path": "/",
        "expirationDate": 1893456000.5,
        "httpOnly": True,
        "secure": True,
        "sameSite": "unspecified",
        "session": False,
        "storeId": "0",
    },
    {
        "domain": "m.example.org",
        "hostOnly": True,
        "name": "csrf",
        "value": CSRF,
        "path": "/app",
        "httpOnly": False,
        "secure": False,
        "sameSite": "lax",
        "session": True,
    },
]
NETSCAPE_TXT = (
    "# Netscape HTTP Cookie File\n"
    "# exported for the case file\n"
    "\n"
    f"#HttpOnly_.example.org\tTRUE\t/\tTRUE\t1893456000.5\tsid\t{SID}\n"
    f"m.example.org\tFALSE\t/app\tFALSE\t0\tcsrf\t{CSRF}\n"
)
EXPECTED = [
    {
        "name": "sid",
        "value": SID,
        "domain": ".example.org",
        "path": "/",
        "expires": 1893456000.5,
        "httpOnly": True,
        "secure": True,
        "sameSite": "Lax",
    },
    {
        "name": "csrf",
        "value": CSRF,
        "domain": "m.example.org",
        "path": "/app",
        "expires": -1,
        "httpOnly": False,
        "secure": False,
        "sameSite": "Lax",
    },
]
PASSWORD_PAGE = (
    "<html><body><form action=/login method=post><input name=email>"
    "<input type=password name=pass><button>Log in</button></form></body></html>"
)
FEED_PAGE = "<html><body><h1>News feed</h1><div class=post>hello</div></body></html>"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def local_session(tmp_path: Path, name: str = "puppet1") -> tuple[SessionStore, Session]:
    """A stored session whose ``sid`` cookie belongs to 127.0.0.1 (the test servers)."""
    cookies = f"127.0.0.1\tFALSE\t/\tFALSE\t0\tsid\t{SID}\n"
    store = SessionStore(tmp_path / "data")
    session = store.import_cookies(
        name,
        write(tmp_path, "cookies.txt", cookies),
        user_agent="Mozilla/5.0 (X11; Linux x86_64) TestPuppet/1.0 Chrome/150.0.0.0",
        locale="km-KH",
        timezone_id="Asia/Phnom_Penh",
    )
    return store, session


@pytest.fixture
def echo_server() -> Iterator[str]:
    """A loopback server whose page shows the request's Cookie and User-Agent headers.

    ``/renew`` also sets a fresh cookie, as a platform renewing a login would.
    """

    class Echo(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = (
                f"<pre id=cookie>{self.headers.get('Cookie', '')}</pre>"
                f"<pre id=ua>{self.headers.get('User-Agent', '')}</pre>"
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            if self.path == "/renew":
                self.send_header("Set-Cookie", "renewed=token-5e8b1d2f; Path=/; Max-Age=3600")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# -- importing cookies --------------------------------------------------------------------------
def test_extension_json_and_netscape_give_the_same_playwright_cookies(tmp_path):
    store = SessionStore(tmp_path / "data")
    from_json = store.import_cookies(
        "from-json", write(tmp_path, "c.json", json.dumps(EXTENSION_JSON))
    )
    from_txt = store.import_cookies("from_txt", write(tmp_path, "cookies.txt", NETSCAPE_TXT))

    assert from_json.storage_state["cookies"] == EXPECTED
    assert from_txt.storage_state["cookies"] == EXPECTED
    assert store.load("from_txt").storage_state["cookies"] == EXPECTED  # survives a reload
    assert mode(store.folder) == 0o700
    assert mode(store.path_for("from-json")) == 0o600
    assert mode(store.path_for("from_txt")) == 0o600
    assert "HeadlessChrome" not in from_json.user_agent and "Chrome/" in from_json.user_agent


def test_playwright_storage_state_and_same_site_values_are_mapped(tmp_path):
    state = {
        "cookies": [
            {**EXPECTED[0], "sameSite": "None"},
            {**EXPECTED[1], "sameSite": "Strict", "expires": 1900000000},
        ],
        "origins": [{"origin": "https://example.org", "localStorage": []}],
    }
    store = SessionStore(tmp_path / "data")
    session = store.import_cookies("pw", write(tmp_path, "state.json", json.dumps(state)))

    assert [c["sameSite"] for c in session.cookies] == ["None", "Strict"]
    assert session.cookies[1]["expires"] == 1900000000
    assert session.storage_state["origins"] == state["origins"]


def test_extension_same_site_values_are_mapped(tmp_path):
    exported = [
        {**EXTENSION_JSON[0], "sameSite": "no_restriction"},
        {**EXTENSION_JSON[0], "name": "b", "sameSite": "strict"},
        # Chromium refuses SameSite=None without Secure: imported as Lax instead of failing.
        {**EXTENSION_JSON[1], "sameSite": "no_restriction"},
    ]
    store = SessionStore(tmp_path / "data")
    session = store.import_cookies("ext", write(tmp_path, "c.json", json.dumps(exported)))
    assert [c["sameSite"] for c in session.cookies] == ["None", "Strict", "Lax"]


def test_reimport_keeps_the_sessions_user_agent(tmp_path):
    store = SessionStore(tmp_path / "data")
    first = store.import_cookies(
        "acct", write(tmp_path, "a.txt", NETSCAPE_TXT), user_agent="UA-one/1.0"
    )
    again = store.import_cookies("acct", write(tmp_path, "c.json", json.dumps(EXTENSION_JSON)))
    assert again.user_agent == "UA-one/1.0"
    assert again.created_at == first.created_at


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "spaces.txt",
            "# Netscape HTTP Cookie File\n\nexample.org FALSE / FALSE 0 sid abcdefgh\n",
            ["line 3", "TABs"],
        ),
        (
            "expiry.txt",
            "example.org\tFALSE\t/\tFALSE\tsoon\tsid\tabcdefgh\n",
            ["line 1", "expiry", "Unix seconds"],
        ),
        (
            "flag.txt",
            "example.org\tyes\t/\tFALSE\t0\tsid\tabcdefgh\n",
            ["line 1", "TRUE or FALSE"],
        ),
        ("broken.json", '[\n  {"domain": "example.org",, }\n]', ["line 2", "not valid JSON"]),
        (
            "novalue.json",
            json.dumps([EXTENSION_JSON[0], {"domain": "example.org", "name": "x"}]),
            ["cookie #2", "'value'", "Cookie-Editor"],
        ),
        (
            "samesite.json",
            json.dumps([{**EXTENSION_JSON[0], "sameSite": "sometimes"}]),
            ["cookie #1", "sameSite", "no_restriction"],
        ),
        ("object.json", '{"session": "x"}', ['"cookies" list']),
        ("empty.txt", "# Netscape HTTP Cookie File\n", ["no cookies"]),
    ],
)
def test_malformed_cookie_files_say_where_and_what_is_expected(tmp_path, name, text, expected):
    store = SessionStore(tmp_path / "data")
    with pytest.raises(WatcherError) as caught:
        store.import_cookies("bad", write(tmp_path, name, text))
    for part in expected:
        assert part in str(caught.value)
    assert not store.exists("bad")  # nothing half-imported


# -- the session files --------------------------------------------------------------------------
def test_a_session_file_others_can_read_is_refused(tmp_path):
    store = SessionStore(tmp_path / "data")
    store.import_cookies("leaky", write(tmp_path, "c.txt", NETSCAPE_TXT))
    path = store.path_for("leaky")
    os.chmod(path, 0o644)

    with pytest.raises(WatcherError, match="chmod 600") as caught:
        store.load("leaky")
    assert str(path) in str(caught.value)
    assert "can be read by other users" in store.list()[0].problem  # listed, not crashing


@pytest.mark.parametrize("name", ["../outside", "a/b", ".hidden", "", "x" * 65, "a b"])
def test_session_names_cannot_become_paths(tmp_path, name):
    store = SessionStore(tmp_path / "data")
    with pytest.raises(WatcherError, match="cannot be used"):
        store.import_cookies(name, write(tmp_path, "c.txt", NETSCAPE_TXT))
    assert not (tmp_path / "outside.json").exists()
    assert not store.folder.exists()


def test_unknown_session_names_the_known_ones_and_how_to_create_one(tmp_path):
    store = SessionStore(tmp_path / "data")
    store.import_cookies("alpha", write(tmp_path, "c.txt", NETSCAPE_TXT))
    with pytest.raises(WatcherError) as caught:
        store.load("beta")
    message = str(caught.value)
    assert "alpha" in message and "watcher session import" in message


def test_cookie_values_never_reach_list_output_repr_or_logs(tmp_path, caplog):
    data = tmp_path / "data"
    SessionStore(data).import_cookies("puppet", write(tmp_path, "c.txt", NETSCAPE_TXT))

    listed = watcher("session", "list", "--data", str(data))
    assert listed.returncode == 0, listed.stderr
    assert "puppet" in listed.stdout and "example.org" in listed.stdout
    assert " 2 " in listed.stdout  # the cookie count
    assert SID not in listed.stdout + listed.stderr and CSRF not in listed.stdout

    session = SessionStore(data).load("puppet")
    assert SID not in repr(session)
    with caplog.at_level(logging.INFO):
        logging.getLogger("watcher.test").info("request with Cookie: sid=%s", SID)
    assert SID not in caplog.text and REDACTED in caplog.text


# -- a real Chromium with the session -----------------------------------------------------------
async def test_a_session_context_sends_its_cookie_and_wears_its_profile(
    tmp_path, browser: Browser, echo_server
):
    _store, session = local_session(tmp_path)

    async with browser.context(session) as context:
        page = await context.new_page()
        await page.goto(echo_server + "/")
        sent_cookie = await page.inner_text("#cookie")
        sent_ua = await page.inner_text("#ua")
        seen = await page.evaluate(
            "[navigator.userAgent, navigator.language,"
            " Intl.DateTimeFormat().resolvedOptions().timeZone, window.innerWidth]"
        )
    async with browser.context() as anonymous:
        page = await anonymous.new_page()
        await page.goto(echo_server + "/")
        anonymous_cookie = await page.inner_text("#cookie")

    assert f"sid={SID}" in sent_cookie
    assert sent_ua == session.user_agent
    assert seen == [session.user_agent, "km-KH", "Asia/Phnom_Penh", session.viewport["width"]]
    assert anonymous_cookie == ""  # other captures never carry the account's cookies


async def test_cookies_renewed_during_a_capture_are_saved_back(
    tmp_path, browser: Browser, echo_server
):
    store, session = local_session(tmp_path)

    async with browser.context(session) as context:
        page = await context.new_page()
        await page.goto(echo_server + "/renew")
        state = await refreshed_state(context)
    store.update_state(session.name, state)

    reloaded = store.load(session.name)
    names = {c["name"]: c["value"] for c in reloaded.cookies}
    assert names == {"sid": SID, "renewed": "token-5e8b1d2f"}
    assert reloaded.user_agent == session.user_agent  # the profile does not change
    assert mode(store.path_for(session.name)) == 0o600


@pytest.fixture
def login_site() -> Iterator[DemoSite]:
    with DemoSite() as running:
        running.route("/feed", FEED_PAGE)
        running.route("/wall", PASSWORD_PAGE)
        running.route("/private", status=302, headers={"Location": "/login.php?next=/private"})
        running.route("/login.php", "<html><body>Please sign in</body></html>")
        yield running


@pytest.mark.parametrize(
    ("path", "platform", "code", "said"),
    [
        ("/feed", None, 0, "logged in"),
        ("/wall", None, 1, "asks for a password"),
        ("/private", None, 1, "login"),
        ("/wall", "generic", 1, "login wall"),  # the platform's own detect_block
    ],
)
def test_session_check_tells_logged_in_from_a_login_wall(
    tmp_path, login_site, path, platform, code, said
):
    store, session = local_session(tmp_path)
    url = f"http://127.0.0.1:{login_site.port}{path}"
    # The login site is on loopback, which a session check refuses unless told.
    extra = ["--platform", platform] if platform else []
    extra.append("--allow-private-network")

    result = watcher(
        "session", "check", session.name, "--url", url, "--data", str(store.folder.parent), *extra
    )

    assert result.returncode == code, result.stdout + result.stderr
    assert said in result.stdout
    assert ("logged out" in result.stdout) == bool(code)
    assert SID not in result.stdout + result.stderr


def test_login_without_a_screen_points_to_import(tmp_path):
    no_screen: dict[str, str | None] = {"DISPLAY": None, "WAYLAND_DISPLAY": None}
    result = watcher(
        "session",
        "login",
        "acct",
        "--url",
        "http://127.0.0.1:9/",
        "--data",
        str(tmp_path),
        env=no_screen,
    )
    assert result.returncode == 1
    assert "no screen" in result.stderr and "watcher session import" in result.stderr
    assert not (tmp_path / "sessions").exists()


@pytest.mark.parametrize(
    ("url", "status", "passwords", "wall"),
    [
        ("https://www.facebook.com/groups/123", 200, 0, False),
        ("https://www.facebook.com/login.php?next=x", 200, 0, True),
        ("https://www.facebook.com/checkpoint/block/", 200, 0, True),
        ("https://shop.example/seller/loginhelp-guide", 200, 0, False),
        ("https://shop.example/seller/1", 200, 1, True),
        ("https://shop.example/seller/1", 403, 0, True),
    ],
)
def test_login_wall_signs(url, status, passwords, wall):
    assert (login_wall(url, status, passwords) is not None) == wall


# -- one capture per session --------------------------------------------------------------------
async def _overlap(locks_a: SessionLocks, locks_b: SessionLocks, name_a: str, name_b: str) -> bool:
    """Whether two holders were inside ``hold`` at the same time."""
    inside: list[str] = []
    overlapped = False

    async def holder(locks: SessionLocks, name: str, tag: str) -> None:
        nonlocal overlapped
        async with locks.hold(name):
            inside.append(tag)
            overlapped = overlapped or len(inside) > 1
            await asyncio.sleep(0.15)
            inside.remove(tag)

    await asyncio.gather(holder(locks_a, name_a, "a"), holder(locks_b, name_b, "b"))
    return overlapped


async def test_session_locks_serialise_one_session_but_not_two(tmp_path):
    locks = SessionLocks()
    assert await _overlap(locks, locks, "acct", "acct") is False
    assert await _overlap(locks, locks, "acct", "other") is True


async def test_session_locks_hold_across_processes_through_the_folder(tmp_path):
    # Two SessionLocks over one folder stand for `watcher run` and `watcher check`.
    folder = tmp_path / "sessions"
    one, two = SessionLocks(folder, poll_s=0.02), SessionLocks(folder, poll_s=0.02)
    assert await _overlap(one, two, "acct", "acct") is False
    assert await _overlap(one, two, "acct", "other") is True
