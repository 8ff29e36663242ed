"""Watchlist loading: every problem is reported with its line number and a plain fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from watcher.capture.adapters.generic import GenericAdapter
from watcher.errors import WatcherError, WatchlistError, WatchlistProblem
from watcher.watchlist import (
    DURATION_FIX,
    Target,
    Watchlist,
    check_watchlist,
    load_watchlist,
    parse_watchlist,
    telegram_preview_url,
)

FIXTURES = Path(__file__).parent / "fixtures" / "watchlists"
REPO_WATCHLIST = Path(__file__).resolve().parent.parent / "watchlist.yaml"
ONE_TARGET = "targets:\n  - name: a\n    platform: telegram\n    url: https://t.me/s/a\n"


def problems_of(name: str) -> list[WatchlistProblem]:
    """The problems load_watchlist reports for a fixture file."""
    with pytest.raises(WatchlistError) as caught:
        load_watchlist(FIXTURES / name)
    assert caught.value.path == str(FIXTURES / name)
    return caught.value.problems


def problems_in(text: str) -> list[WatchlistProblem]:
    """The problems parse_watchlist reports for some text."""
    with pytest.raises(WatchlistError) as caught:
        parse_watchlist(text)
    return caught.value.problems


def lines(problems: list[WatchlistProblem]) -> list[int | None]:
    return [p.line for p in problems]


# -- a valid file --------------------------------------------------------------------------
@pytest.fixture
def valid() -> Watchlist:
    return load_watchlist(FIXTURES / "valid.yaml")


def test_valid_file_loads_with_absolute_path_and_top_level_values(valid: Watchlist) -> None:
    assert valid.path == str((FIXTURES / "valid.yaml").resolve())
    assert valid.operator == "Jane Doe"
    assert valid.admins == [111]
    assert valid.members == [222, 333]
    assert valid.keywords == {"ivory": ["ivory", "tusk"]}
    assert valid.images.known == ["seized/tusk1.jpg"]
    assert valid.alerts.telegram is not None
    assert valid.alerts.telegram.chat_ids == [-1001234567890]
    assert "capture_failed" in valid.alerts.telegram.kinds


def test_targets_take_missing_values_from_defaults(valid: Watchlist) -> None:
    channel = valid.target("ivory-channel")
    assert (channel.every, channel.jitter, channel.pages, channel.timeout) == (900, 30, 2, 45)
    assert channel.tags == ("ivory", "pangolin")
    assert channel.alert_on == "all"


def test_a_target_own_values_win_over_defaults(valid: Watchlist) -> None:
    market = valid.target("bird-market")
    assert (market.every, market.pages, market.jitter) == (3600, 3, 30)
    assert market.alert_on == "keyword"
    assert market.selectors["id"] == "@data-id"


def test_target_adapter_uses_the_watchlist_selectors(valid: Watchlist) -> None:
    adapter = valid.target("bird-market").adapter()
    assert isinstance(adapter, GenericAdapter)
    assert adapter.recipe.post is not None and adapter.recipe.post.css == ".listing"
    assert adapter.recipe.id is not None and adapter.recipe.id.attr == "data-id"


def test_watchlist_and_targets_are_frozen(valid: Watchlist) -> None:
    with pytest.raises(ValueError):
        valid.targets[0].name = "other"  # type: ignore[misc]


def test_parse_watchlist_leaves_path_unset_and_uses_built_in_defaults() -> None:
    watchlist = parse_watchlist(ONE_TARGET)
    assert watchlist.path is None
    target = watchlist.targets[0]
    assert (target.every, target.jitter, target.pages, target.timeout) == (900, 60, 1, 45)
    assert watchlist.alerts.telegram is None


def test_blank_optional_keys_mean_none() -> None:
    watchlist = parse_watchlist(ONE_TARGET + "    tags:\n    selectors:\nadmins:\n")
    assert watchlist.targets[0].tags == ()
    assert watchlist.targets[0].selectors == {}
    assert watchlist.admins == []


# -- select and target ---------------------------------------------------------------------
def test_select_with_no_names_gives_every_target(valid: Watchlist) -> None:
    assert [t.name for t in valid.select([])] == ["ivory-channel", "bird-market"]


def test_select_keeps_the_order_given(valid: Watchlist) -> None:
    assert [t.name for t in valid.select(["bird-market", "ivory-channel"])] == [
        "bird-market",
        "ivory-channel",
    ]


def test_select_unknown_name_names_the_known_ones(valid: Watchlist) -> None:
    with pytest.raises(
        WatcherError, match="no target named nope; known: ivory-channel, bird-market"
    ):
        valid.select(["ivory-channel", "nope"])


def test_target_unknown_name_names_the_known_ones(valid: Watchlist) -> None:
    with pytest.raises(WatcherError) as caught:
        valid.target("nope")
    assert str(caught.value) == "no target named nope; known: ivory-channel, bird-market"
    assert not isinstance(caught.value, WatchlistError)


# -- fixture files with problems -----------------------------------------------------------
def test_yaml_syntax_error_gives_its_line_and_the_indentation_fix() -> None:
    (problem,) = problems_of("bad_yaml.yaml")
    assert problem.line == 4
    assert "wrong indentation: this line starts after 3 spaces" in problem.message
    assert "line it up with `platform` on line 3: start it after 4 spaces" in problem.fix
    assert "block end" not in str(problem)


# The mistakes people make typing YAML by hand, each named in words on the line to edit
# (the parser speaks of tokens and often notices a mistake lines later).
@pytest.mark.parametrize(
    ("text", "line", "message", "fix"),
    [
        (
            "targets:\n  - name: a\n    platform: telegram\n      url: https://t.me/s/a\n",
            4,
            "wrong indentation: this line starts after 6 spaces",
            "line it up with `platform` on line 3: start it after 4 spaces",
        ),
        (
            "defaults:\n    every: 5m\n  jitter: 1m\n" + ONE_TARGET,
            3,
            "wrong indentation: this line starts after 2 spaces",
            "line it up with `every` on line 2: start it after 4 spaces",
        ),
        (
            ONE_TARGET + " - name: b\n",
            5,
            "wrong indentation: this line starts after 1 space",
            "line it up with the `- ` item on line 2: start it after 2 spaces",
        ),
        (
            "operator: me\n  " + ONE_TARGET,
            2,
            "wrong indentation: this line starts after 2 spaces",
            "line it up with `operator` on line 1: start it after no spaces",
        ),
        (
            "targets:\n  - name: a\n\tplatform: telegram\n",
            3,
            "there is a tab character on this line",
            "replace the tab with spaces",
        ),
        (
            'targets:\n  - name: "a\n    platform: telegram\n    url: https://t.me/s/a\n',
            2,
            'the quote " opened on this line is never closed',
            'closing " on the same line',
        ),
        (
            'targets:\n  - name: "a\n    platform: telegram\n  - name: "b"\n',
            2,
            'the quote " opened on this line is never closed',
            'closing " on the same line',
        ),
        (
            ONE_TARGET + "    tags: [ivory, cambodia\n    every: 5m\n",
            5,
            "the `[` opened on this line is not closed with `]`",
            "close it with `]` on the same line",
        ),
        (
            "targets:\n  - name: a\n    every:15m\n    url: https://t.me/s/a\n",
            3,
            "there is no space after the colon",
            "write `every: 15m`",
        ),
        (
            "targets:\n  -name: a\n    url: https://t.me/s/a\n",
            2,
            "a list item needs a space after the `-`",
            "write `- name: a`",
        ),
        (
            ONE_TARGET + "    selectors:\n      id: @data-id\n",
            6,
            "a value cannot start with `@`",
            'id: "@data-id"',
        ),
    ],
    ids=[
        "key-indented-more",
        "key-indented-less",
        "item-indented-less",
        "top-level-indented",
        "tab",
        "unclosed-quote",
        "unclosed-quote-closed-later",
        "unclosed-bracket",
        "no-space-after-colon",
        "no-space-after-dash",
        "at-sign",
    ],
)
def test_common_yaml_mistakes_in_plain_words(text: str, line: int, message: str, fix: str) -> None:
    (problem,) = problems_in(text)
    assert problem.line == line
    assert message in problem.message
    assert fix in problem.fix
    assert "<block" not in str(problem) and "token" not in str(problem)


def test_unknown_keys_are_reported_with_the_closest_allowed_key() -> None:
    top, target = problems_of("unknown_key.yaml")
    assert (top.line, target.line) == (1, 6)
    assert "`operater`" in top.message
    assert "did you mean `operator`?" in top.fix
    assert "`evry`" in target.message
    assert "did you mean `every`?" in target.fix
    assert "jitter" in target.fix  # the allowed keys are listed
    assert target.where == "target ivory-channel: evry"


def test_bad_intervals_each_say_how_to_write_a_duration() -> None:
    problems = problems_of("bad_interval.yaml")
    assert lines(problems) == [2, 7, 11, 15]
    assert all(DURATION_FIX in p.fix for p in problems)
    jitter, words, zero, short = problems
    assert jitter.where == "defaults.jitter"
    assert "`15 minutes` is not a length of time" in words.message
    assert "too short" in zero.message and "at least 5s" in zero.fix
    assert "2s is too short" in short.message


def test_duplicate_target_name_points_at_both_lines() -> None:
    (problem,) = problems_of("duplicate.yaml")
    assert problem.line == 8
    assert "line 2" in problem.message
    assert "own name" in problem.fix


def test_generic_target_problems_are_all_reported() -> None:
    problems = problems_of("generic_missing_selector.yaml")
    assert lines(problems) == [5, 7, 8, 10, 10]
    missing_id, unknown, empty, missing_post, missing_id_2 = problems
    assert "selector missing" in missing_id.message and "`id`" in missing_id.message
    assert 'id: "@data-id"' in missing_id.fix
    assert "`titel`" in unknown.message and "did you mean `time`?" in unknown.fix
    assert "empty" in empty.message and "double quotes" in empty.fix
    assert "`post`" in missing_post.message and "`id`" in missing_id_2.message
    assert missing_post.where == "target no-selectors: platform"


def test_generic_requirements_come_from_the_adapter() -> None:
    assert GenericAdapter.required_selectors == ("post", "id")


def test_bad_urls_are_reported_one_per_target() -> None:
    problems = problems_of("bad_url.yaml")
    assert lines(problems) == [4, 7, 10]
    assert all("https://" in p.fix for p in problems)
    assert "`t.me/s/examplechannel` is not a web address" in problems[0].message


# -- problems in text ----------------------------------------------------------------------
@pytest.mark.parametrize("text", ["", "# nothing but a comment\n"])
def test_empty_file(text: str) -> None:
    (problem,) = problems_in(text)
    assert problem.line is None
    assert "empty" in problem.message
    assert "targets:" in problem.fix


def test_top_level_list_is_not_a_watchlist() -> None:
    (problem,) = problems_in("- name: a\n- name: b\n")
    assert problem.line == 1
    assert "`key: value`" in problem.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("operator: Jane\n", "`targets` is missing"),
        ("operator: Jane\ntargets: []\n", "no targets"),
        ("operator: Jane\ntargets:\n", "no targets"),
    ],
)
def test_missing_or_empty_targets(text: str, message: str) -> None:
    (problem,) = problems_in(text)
    assert message in problem.message
    assert "- name:" in problem.fix


def test_unknown_platform_lists_the_known_ones() -> None:
    (problem,) = problems_in(ONE_TARGET.replace("telegram", "telegarm"))
    assert problem.line == 3
    assert "`telegarm`" in problem.message
    assert "did you mean `telegram`?" in problem.fix and "generic" in problem.fix


def test_bad_name_says_which_characters_are_allowed() -> None:
    (problem,) = problems_in(ONE_TARGET.replace("name: a", "name: my target"))
    assert problem.line == 2
    assert "letters, digits, `_`, `.` and `-`" in problem.fix


def test_wrong_types_are_described_in_plain_words() -> None:
    text = (
        ONE_TARGET + "    tags: ivory\n    pages: three\n    alert_on: sometimes\nadmins: [1, me]\n"
    )
    tags, pages, alert_on, admins = problems_in(text)
    assert (tags.line, pages.line, alert_on.line, admins.line) == (5, 6, 7, 8)
    assert tags.message == "this should be a list, not `ivory`"
    assert "one item per line" in tags.fix
    assert "whole number" in pages.message
    assert "all" in alert_on.fix and "keyword" in alert_on.fix
    assert admins.where == "admins item 2"


def test_yes_is_not_a_number_of_pages() -> None:
    (problem,) = problems_in(ONE_TARGET + "    pages: yes\n")
    assert problem.line == 5
    assert "whole number" in problem.message


def test_pages_out_of_range() -> None:
    (problem,) = problems_in(ONE_TARGET + "    pages: 51\n")
    assert problem.line == 5
    assert "from 1 to 50" in problem.fix


def test_missing_key_points_at_its_target() -> None:
    text = "targets:\n  - name: a\n    platform: telegram\n  - name: b\n    url: https://x.org\n"
    first, second = problems_in(text)
    assert (first.line, second.line) == (2, 4)
    assert first.message == "`url` is missing"
    assert second.message == "`platform` is missing" and "telegram" in second.fix


def test_key_written_twice_is_reported() -> None:
    (problem,) = problems_in(ONE_TARGET + "    url: https://t.me/s/b\n")
    assert problem.line == 5
    assert "twice" in problem.message and "line 4" in problem.message


def test_path_cannot_be_set_from_the_file() -> None:
    (problem,) = problems_in("path: /etc\n" + ONE_TARGET)
    assert problem.line == 1
    assert "unknown key `path`" in problem.message


def test_unquoted_at_sign_suggests_quotes() -> None:
    (problem,) = problems_in(ONE_TARGET + "    selectors:\n      id: @data-id\n")
    assert problem.line == 6
    assert 'id: "@data-id"' in problem.fix


def test_telegram_alert_problems() -> None:
    text = ONE_TARGET + (
        "alerts:\n  telegram:\n    chat_ids: []\n    api_url: localhost\n    kinds: [nwe_post]\n"
    )
    chats, api_url, kind = problems_in(text)
    assert (chats.line, api_url.line, kind.line) == (7, 8, 9)
    assert "at least one chat id" in chats.fix
    assert "not a web address" in api_url.message
    assert "did you mean `new_post`?" in kind.fix


def test_a_bad_default_is_reported_once_not_per_target() -> None:
    text = (
        "defaults:\n  every: soon\n"
        + ONE_TARGET
        + ONE_TARGET.replace("targets:\n", "").replace("name: a", "name: b")
    )
    (problem,) = problems_in(text)
    assert problem.line == 2
    assert problem.where == "defaults.every"


def test_problems_are_sorted_by_line_across_targets() -> None:
    text = (
        "targets:\n  - name: a\n    platform: nope\n    url: https://t.me/s/a\n"
        "  - name: b\n    platform: telegram\n    url: ftp://x\n"
        "defaults:\n  pages: 0\n"
    )
    assert lines(problems_in(text)) == [3, 7, 9]


def test_error_text_names_the_file_and_each_line() -> None:
    with pytest.raises(WatchlistError) as caught:
        load_watchlist(FIXTURES / "bad_url.yaml")
    text = str(caught.value)
    assert text.startswith(f"{FIXTURES / 'bad_url.yaml'}: 3 problem(s)")
    assert "line 7 (target ftp: url)" in text


def test_missing_file_is_a_watchlist_error(tmp_path: Path) -> None:
    with pytest.raises(WatchlistError) as caught:
        load_watchlist(tmp_path / "nope.yaml")
    assert "does not exist" in caught.value.problems[0].message


def test_target_can_be_built_directly_with_built_in_defaults() -> None:
    target = Target(name="x", platform="telegram", url="https://t.me/s/x")
    assert (target.every, target.pages) == (900, 1)


@pytest.mark.skipif(not REPO_WATCHLIST.exists(), reason="no watchlist.yaml in the repo")
def test_the_repo_watchlist_loads() -> None:
    watchlist = load_watchlist(REPO_WATCHLIST)
    assert watchlist.targets


def test_number_as_key_is_an_unknown_key() -> None:
    (problem,) = problems_in("1: x\n" + ONE_TARGET)
    assert problem.line == 1
    assert "unknown key `1`" in problem.message
    assert "targets" in problem.fix


def test_yaml_merge_keys_are_not_mistaken_for_duplicates() -> None:
    text = (
        "targets:\n  - &base {name: a, platform: telegram, url: https://t.me/s/a}\n"
        "  - <<: *base\n    name: b\n    evry: 5m\n"
    )
    (problem,) = problems_in(text)
    assert problem.line == 5
    assert "did you mean `every`?" in problem.fix


def test_pages_at_once_is_set_in_the_watchlist_and_checked(tmp_path):
    from watcher.app import App

    target = "targets:\n  - {name: a, platform: telegram, url: 'https://t.me/s/a'}\n"
    path = tmp_path / "w.yaml"
    path.write_text("max_concurrent: 4\n" + target)
    watchlist = load_watchlist(path)
    app = App.open(watchlist, tmp_path / "data")
    try:
        assert app.browser.max_concurrent == 4
        assert app.check_browser.max_concurrent == 8  # light checks: twice as many
    finally:
        app.store.close()

    path.write_text("max_concurrent: 40\n" + target)
    with pytest.raises(WatchlistError) as caught:
        load_watchlist(path)
    message = str(caught.value)
    assert "line 1" in message and "40 pages at once is out of range" in message
    assert "write a number from 1 to 16" in message


@pytest.mark.parametrize("key", ["every", "jitter", "full_every", "timeout"])
@pytest.mark.parametrize("where", ["target", "defaults"])
def test_a_bare_number_is_not_a_length_of_time(key: str, where: str) -> None:
    # `every: 10` could be seconds or minutes: asking costs one edit, guessing could get an
    # account banned or a deletion missed.
    if where == "target":
        text = ONE_TARGET + f"    {key}: 10\n"
    else:
        text = f"defaults:\n  {key}: 10\n" + ONE_TARGET
    (problem,) = problems_in(text)
    assert problem.line == (5 if where == "target" else 2)
    assert "`10` has no unit" in problem.message
    assert "write 10s or 10m" in problem.fix


def test_zero_needs_no_unit_and_defaults_with_units_reach_every_target() -> None:
    text = "defaults:\n  every: 10m\n  full_every: 0\n  jitter: 0\n" + ONE_TARGET
    (target,) = parse_watchlist(text).targets
    assert (target.every, target.full_every, target.jitter) == (600.0, 0.0, 0.0)


# -- warnings: the file works, but probably not as meant -----------------------------------
@pytest.mark.parametrize(
    ("url", "preview"),
    [
        ("https://t.me/ivory_dealer", "https://t.me/s/ivory_dealer"),
        ("http://t.me/ivory_dealer/", "https://t.me/s/ivory_dealer"),
        ("https://telegram.me/IvoryDealer", "https://t.me/s/IvoryDealer"),
        ("https://t.me/ivory_dealer/123", "https://t.me/s/ivory_dealer"),  # one post's link
        ("https://t.me/s/ivory_dealer", None),  # already the preview
        ("https://t.me/+AbCdEfGhIjK12345", None),  # private invite links have no preview
        ("https://t.me/joinchat/AbCdEfGhIjK12345", None),
        ("https://t.me/c/1234567890", None),  # a private group's own address
        ("https://t.me/c/1234567890/55", None),
        ("https://t.me/addstickers/somepack", None),
        ("https://t.me/", None),
        ("https://example.org/ivory_dealer", None),
    ],
)
def test_telegram_preview_url_only_for_a_public_channel_name(url: str, preview: str | None):
    assert telegram_preview_url(url) == preview


def test_warnings_for_a_plain_telegram_address_and_facebook_without_session(tmp_path):
    path = tmp_path / "watchlist.yaml"
    path.write_text(
        "targets:\n"
        "  - name: tg\n    platform: telegram\n    url: https://t.me/ivory_dealer\n"
        "  - name: fb\n    platform: facebook\n    url: https://www.facebook.com/somepage\n"
        "  - name: fb-ok\n    platform: facebook\n    url: https://www.facebook.com/other\n"
        "    session: puppet\n"
        "  - name: private\n    platform: telegram\n    url: https://t.me/+AbCdEf123\n"
    )
    checked = check_watchlist(path)
    assert len(checked.watchlist.targets) == 4
    telegram, facebook, private = checked.warnings
    # A private chat has no preview: it is read through an account (issue 24).
    assert private.where == "target private: session"
    assert "watcher session telegram" in private.fix
    assert (telegram.line, telegram.where) == (4, "target tg: url")
    assert "url: https://t.me/s/ivory_dealer" in telegram.fix
    assert (facebook.line, facebook.where) == (6, "target fb: session")
    assert "needs a logged-in session" in facebook.message
    assert "watcher session login" in facebook.fix and "session:" in facebook.fix
    assert load_watchlist(path) == checked.watchlist
