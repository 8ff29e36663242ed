"""Bad input from people: hypothesis over the watchlist loader and the bot's pure parsers.

Only our clear errors (WatchlistError / WatcherError with a message) may come out: never
a traceback from YAML, pydantic or a KeyError deep inside."""

from __future__ import annotations

import json

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from watcher.bot.access import Role, check
from watcher.bot.buttons import CALLBACK_LIMIT, AlertPress, WatchPress, parse_callback
from watcher.bot.work import until_after
from watcher.bot.yaml_edit import propose
from watcher.errors import WatcherError, WatchlistError
from watcher.watchlist import parse_watchlist

EXAMPLES = 250
INPUTS_TRIED = {"count": 0}
VALID = parse_watchlist(
    "admins: [1]\nalerts:\n  telegram:\n    chat_ids: [-100]\n"
    "targets:\n  - name: a\n    platform: telegram\n    url: https://t.me/s/a\n"
)

KEYS = [
    "targets", "defaults", "alerts", "operator", "name", "platform", "url", "every", "jitter",
    "pages", "timeout", "tags", "selectors", "post", "id", "text", "images", "session",
    "next_page", "load_more", "scroll", "detail", "telegram", "chat_ids", "admins", "members",
    "alert_on", "keywords", "evidence", "api_url", "token_file",
]  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["telegram", "generic", "15m", "0s", "-1h", "1d", "http://x", "@a", ".x"]),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner, max_size=5),
    ),
    max_leaves=25,
)


def only_our_error(text: str) -> None:
    INPUTS_TRIED["count"] += 1
    try:
        parse_watchlist(text)
    except WatchlistError as exc:
        assert str(exc) and exc.problems  # says what is wrong
        for problem in exc.problems:
            assert problem.message


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.text(max_size=300))
def test_watchlist_random_text(text):
    only_our_error(text)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(documents)
def test_watchlist_random_structures(doc):
    only_our_error(yaml.safe_dump(doc, allow_unicode=True))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(st.sampled_from(KEYS), documents, max_size=6), st.sampled_from(KEYS))
def test_watchlist_mutated_valid_target(extra, key):
    target = {"name": "a", "platform": "generic", "url": "https://x.example/", **extra}
    only_our_error(yaml.safe_dump({"targets": [target], key: extra.get(key)}, allow_unicode=True))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_watchlist_yaml_tricks(raw):
    # Anchors, aliases, tags, and arbitrary bytes decoded as a file would be.
    prefix = "a: &x [*x]\n" if raw[:1] == b"a" else "!!python/object:os.system x\n"
    only_our_error(prefix + raw.decode("utf-8", "replace"))


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=100), st.from_regex(r"(ev|mu|rv|wa|wc|xx):.{0,30}")))
def test_forged_callback_data_is_parsed_or_ignored(data):
    INPUTS_TRIED["count"] += 1
    parsed = parse_callback(data)
    assert parsed is None or isinstance(parsed, AlertPress | WatchPress)
    if parsed is not None:
        assert len(data.encode()) <= CALLBACK_LIMIT


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    st.one_of(st.none(), st.integers()),
    st.integers(),
    st.sampled_from(["private", "group", "supergroup", "channel", "", "x"]),
    st.sampled_from(list(Role)),
)
def test_access_refuses_strangers(user_id, chat_id, chat_type, need):
    INPUTS_TRIED["count"] += 1
    decision = check(VALID, user_id, chat_id, chat_type, need)
    if user_id != 1:
        assert not decision.allowed and decision.reply
    if chat_id != -100 and not (chat_type == "private" and chat_id == user_id):
        assert not decision.allowed


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.text(max_size=60))
def test_pause_durations_only_clear_errors(text):
    INPUTS_TRIED["count"] += 1
    try:
        until_after(text)
    except WatcherError as exc:
        assert str(exc)


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    st.one_of(st.text(max_size=80), st.from_regex(r"https?://(t\.me|telegram\.me)/.{0,40}")),
    st.one_of(st.none(), st.text(max_size=40)),
)
@example(url="HTTP://T.ME/NULL", name=None)  # found by this test: a name YAML reads as null
def test_watch_command_only_clear_errors(url, name):
    INPUTS_TRIED["count"] += 1
    try:
        target = propose(VALID, url, name)
    except WatcherError as exc:
        assert str(exc)
        return
    # Whatever was proposed must itself load as a watchlist target.
    # Quoted as the bot's writer (ruamel) quotes it: a channel called "null" or "yes" is a name.
    parse_watchlist(
        f"targets:\n  - name: {json.dumps(target.name)}\n    platform: telegram\n"
        f"    url: {target.url}\n"
    )
