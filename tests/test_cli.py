"""The command line as a user runs it: a real process, real files, the fixture site."""

from __future__ import annotations

import argparse
import json
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import channel_target, exported_channel, shop_target, watcher
from watcher.app import CUSTODY_KEY_NAME
from watcher.cli import build_parser


def test_validate_lists_every_problem_with_line_and_fix(tmp_path, write_watchlist):
    write_watchlist(
        """\
        targets:
          - name: a
            platform: telegram
            url: https://t.me/s/a
            evry: 15m
          - name: a
            platform: telegram
            url: ftp://example.org/x
            every: 15 minutes
        """
    )
    result = watcher("validate", cwd=tmp_path)
    assert result.returncode == 1
    err = result.stderr
    assert "line 5" in err and "every" in err  # unknown key, with the likely intended one
    assert "line 6" in err and "already used by the target on line 2" in err
    assert "line 8" in err and "http" in err
    assert "line 9" in err and "30s, 15m" in err
    assert "Traceback" not in err


def test_validate_refuses_a_duration_without_a_unit(tmp_path, write_watchlist):
    write_watchlist(
        """\
        defaults:
          jitter: 30
        targets:
          - name: a
            platform: telegram
            url: https://t.me/s/a
            every: 10
        """
    )
    result = watcher("validate", cwd=tmp_path)
    assert result.returncode == 1
    assert "line 2 (defaults.jitter): `30` has no unit" in result.stderr
    assert "write 30s or 30m" in result.stderr
    assert "line 7 (target a: every): `10` has no unit" in result.stderr
    assert "write 10s or 10m" in result.stderr


def test_validate_names_a_mis_indented_line_in_words(tmp_path, write_watchlist):
    write_watchlist(
        """\
        targets:
          - name: a
            platform: telegram
           url: https://t.me/s/a
        """
    )
    result = watcher("validate", cwd=tmp_path)
    assert result.returncode == 1
    assert "line 4: wrong indentation" in result.stderr
    assert "start it after 4 spaces" in result.stderr
    assert "block end" not in result.stderr and "Traceback" not in result.stderr


def test_validate_warns_with_line_and_fix_but_passes(tmp_path, write_watchlist):
    write_watchlist(
        """\
        targets:
          - name: tg
            platform: telegram
            url: https://t.me/ivory_dealer
          - name: fb
            platform: facebook
            url: https://www.facebook.com/somepage
          - name: invite
            platform: telegram
            url: https://t.me/joinchat/AbCdEf123
        """
    )
    result = watcher("validate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "ok, 3 target(s), 3 warning(s)" in out
    assert "warning: line 4 (target tg: url)" in out and "url: https://t.me/s/ivory_dealer" in out
    assert "warning: line 6 (target fb: session)" in out and "watcher session login" in out
    # An invite link has no preview to point to: only an account reads it (issue 24).
    assert "https://t.me/s/" + "joinchat" not in out
    assert "(target invite: session)" in out and "watcher session telegram" in out


def test_validate_accepts_the_bundled_watchlist():
    repo = Path(__file__).resolve().parents[1]
    result = watcher("validate", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert "2 target(s)" in result.stdout


def test_missing_watchlist_is_a_plain_error(tmp_path):
    result = watcher("check", "--watchlist", "nope.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert "nope.yaml" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_json_then_status(site, tmp_path):
    site.channel("dealer")
    site.shop("store")
    site.add_post("dealer", "first")
    site.add_post("store", "listing")
    (tmp_path / "watchlist.yaml").write_text(
        "targets:\n"
        + channel_target("dealer", f"{site.base_url}/s/dealer")
        + shop_target("store", f"{site.base_url}/shop/store")
    )
    first = watcher("check", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "dealer: ok" in first.stdout and "(baseline)" in first.stdout
    assert (tmp_path / "data" / "watcher.db").exists()

    site.add_post("dealer", "white gold, inbox")
    second = watcher("check", "dealer", "--json", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    events = [json.loads(line) for line in second.stdout.splitlines()]
    assert [(e["kind"], e["target"], e["post_id"]) for e in events] == [
        ("new_post", "dealer", "dealer/2"),
        ("keyword", "dealer", "dealer/2"),  # "white gold" is a dealers' code word for ivory
    ]
    assert events[0]["details"]["text"] == "white gold, inbox"

    status = watcher("status", cwd=tmp_path)
    assert status.returncode == 0
    lines = {line.split()[0]: line for line in status.stdout.splitlines()[1:3]}
    assert "alerts: 0 waiting to be sent, 0 failed for good" in status.stdout
    assert "ok" in lines["dealer"] and lines["dealer"].rstrip().endswith("2 (0)")
    assert lines["store"].rstrip().endswith("1 (0)")


def test_check_between_full_captures_and_check_full(site, tmp_path):
    site.channel("dealer")
    site.add_post("dealer", "first")
    (tmp_path / "watchlist.yaml").write_text(
        "targets:\n" + channel_target("dealer", f"{site.base_url}/s/dealer", "    full_every: 6h\n")
    )
    assert "capture #1 (baseline)" in watcher("check", cwd=tmp_path).stdout
    checked = watcher("check", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "dealer: ok, check #2: the same 1 posts as the last capture" in checked.stdout
    full = watcher("check", "--full", cwd=tmp_path)
    assert full.returncode == 0, full.stderr
    assert "dealer: ok, capture #3, 1 posts" in full.stdout


def test_check_unknown_target_names_the_known_ones(site, tmp_path):
    (tmp_path / "watchlist.yaml").write_text(
        "targets:\n" + channel_target("dealer", f"{site.base_url}/s/dealer")
    )
    result = watcher("check", "delaer", cwd=tmp_path)
    assert result.returncode == 1
    assert "delaer" in result.stderr and "dealer" in result.stderr


def test_check_exit_code_2_and_json_event_for_a_failed_target(site, tmp_path):
    site.route("/s/gone", "gone", status=410)
    (tmp_path / "watchlist.yaml").write_text(
        "targets:\n" + channel_target("gone", f"{site.base_url}/s/gone")
    )
    result = watcher("check", "--json", "--data", str(tmp_path / "elsewhere"), cwd=tmp_path)
    assert result.returncode == 2
    event = json.loads(result.stdout)
    assert event["kind"] == "capture_failed" and "410" in event["details"]["message"]
    assert (tmp_path / "elsewhere" / "watcher.db").exists()


def test_demo_runs_to_the_end_without_a_traceback(tmp_path):
    # `make demo` is the first thing a new user runs: the bundled watchlist, the demo site on
    # its port, captures, site changes and alerts, then where the evidence is.
    repo = Path(__file__).resolve().parents[1]
    result = watcher("demo", "--seconds", "14", "--data", str(tmp_path), cwd=repo)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "(baseline)" in out and "(demo site:" in out
    assert f"database: {tmp_path}" in out
    assert "Traceback" not in out + result.stderr and "ERROR" not in result.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_demo_on_a_taken_port_is_one_line_naming_a_free_port(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = watcher("demo", "--site-only", "--port", str(port), cwd=tmp_path)
    assert result.returncode == 1
    match = re.fullmatch(
        rf"watcher: port {port} is in use: watcher demo --site-only --port (\d+)\n", result.stderr
    )
    assert match, result.stderr
    with socket.socket() as suggested:  # the suggestion really is free
        suggested.bind(("127.0.0.1", int(match.group(1))))


def test_demo_site_only_serves_until_ctrl_c_and_check_works_against_it(tmp_path):
    port = free_port()
    (tmp_path / "watchlist.yaml").write_text(
        "targets:\n" + channel_target("dealer", f"http://127.0.0.1:{port}/s/ivory_dealer_kh")
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "watcher", "demo", "--site-only", "--port", str(port)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        banner = [server.stdout.readline() for _ in range(3)]
        assert banner[0].startswith(f"demo site on http://127.0.0.1:{port}"), banner
        assert "watcher check dealer" in banner[1]  # a target of this watchlist is on it
        assert "Ctrl-C stops it" in banner[2]
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/s/ivory_dealer_kh", timeout=10)
        assert "Antique Carvings KH" in page.read().decode()
        checked = watcher("check", "dealer", cwd=tmp_path)
        assert checked.returncode == 0, checked.stderr
        assert "dealer: ok" in checked.stdout
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "demo site stopped" in out
    assert "Traceback" not in out + err


def test_demo_captures_only_demo_targets_and_names_one_in_its_hint(site, tmp_path):
    # A watchlist mixing a demo page (written for the default port) with a real target: the
    # demo watches the first on its own port and never requests the second.
    site.channel("dealer")
    site.add_post("dealer", "a real dealer's post")
    (tmp_path / "watchlist.yaml").write_text(
        "targets:\n"
        + channel_target("my-demo-channel", "http://127.0.0.1:8765/s/ivory_dealer_kh")
        + channel_target("real-dealer", f"{site.base_url}/s/dealer")
    )
    port = free_port()
    result = watcher("demo", "--seconds", "14", "--port", str(port), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "not on the demo site, so not captured: real-dealer" in out
    assert f"names port 8765; the demo site is on {port}, watched there" in out
    assert "my-demo-channel: ok" in out and "(baseline)" in out
    assert "real-dealer:" not in out
    (export_hint,) = [line for line in out.splitlines() if "watcher export" in line]
    assert export_hint.endswith("--target my-demo-channel")
    assert site.requests == []
    assert "Traceback" not in out + result.stderr


def test_export_asks_what_to_export_and_names_the_bundle_by_it(site, tmp_path):
    # A generic listing whose id came from the page: it must not steer the bundle's file name.
    hostile_id = "../../x\u202egpj.exe"
    site.route(
        "/shop/odd",
        f'<div class="listing" data-id="{hostile_id}"><p class="desc">tusk</p></div>',
    )
    (tmp_path / "watchlist.yaml").write_text(
        "targets:\n"
        + shop_target("odd", f"{site.base_url}/shop/odd")
        + shop_target("second", f"{site.base_url}/shop/odd")
    )
    assert watcher("check", "odd", cwd=tmp_path).returncode == 0
    out = tmp_path / "out"

    unasked = watcher("export", "--out", "out", cwd=tmp_path)
    assert unasked.returncode == 1
    assert "--target" in unasked.stderr and "--all" in unasked.stderr
    assert not out.exists() or not list(out.iterdir())

    unknown = watcher("export", "--target", "nosuch", "--out", "out", cwd=tmp_path)
    assert unknown.returncode == 1
    assert "no target named nosuch; known: odd, second" in unknown.stderr
    assert "{" not in unknown.stderr  # no Python dict

    nothing = watcher("export", "--post", "nope", "--out", "out", cwd=tmp_path)
    assert nothing.returncode == 1 and "no capture matches post nope" in nothing.stderr

    everything = watcher("export", "--all", "--out", "out", cwd=tmp_path)
    assert everything.returncode == 0, everything.stderr
    by_post = watcher("export", "--post", hostile_id, "--out", "out", cwd=tmp_path)
    assert by_post.returncode == 0, by_post.stderr
    names = sorted(p.name for p in out.iterdir())
    date = r"\d{8}T\d{6}Z"
    assert len(names) == 2
    assert re.fullmatch(rf"watcher-evidence-all-{date}\.zip", names[0]), names
    assert re.fullmatch(rf"watcher-evidence-post-x_gpj_exe-{date}\.zip", names[1]), names
    assert not list(tmp_path.glob("*.zip")) and not list(tmp_path.glob("*.exe"))


def test_alerts_say_why_a_capture_failed_and_limit_counts_from_zero(site, tmp_path):
    site.route("/s/gone", "gone", status=410)
    (tmp_path / "watchlist.yaml").write_text(
        "targets:\n" + channel_target("gone", f"{site.base_url}/s/gone")
    )
    assert watcher("check", cwd=tmp_path).returncode == 2
    shown = watcher("alerts", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "capture_failed gone" in shown.stdout
    why = [line for line in shown.stdout.splitlines() if "why:" in line]
    assert len(why) == 1 and "410" in why[0]

    none = watcher("alerts", "--limit", "0", cwd=tmp_path)
    assert none.returncode == 0 and "capture_failed" not in none.stdout
    negative = watcher("alerts", "--limit", "-3", cwd=tmp_path)
    assert negative.returncode == 2 and "0 or more" in negative.stderr


def test_verify_a_folder_says_to_give_the_zip(tmp_path):
    (tmp_path / "unzipped").mkdir()
    (tmp_path / "unzipped" / "manifest.json").write_text("{}")
    result = watcher("verify", "unzipped", cwd=tmp_path)
    assert result.returncode == 1
    assert "NOT VERIFIED: unzipped: a folder, not a bundle" in result.stdout
    assert ".zip" in result.stdout and "Errno" not in result.stdout + result.stderr
    (tmp_path / "bundles").mkdir()
    (tmp_path / "bundles" / "watcher-evidence-all-20261101T000000Z.zip").write_bytes(b"")
    pointed = watcher("verify", "bundles", cwd=tmp_path)
    assert pointed.returncode == 1
    assert "watcher verify bundles/watcher-evidence-all-20261101T000000Z.zip" in pointed.stdout


def test_probe_target_reads_its_recipe_from_the_watchlist(site, tmp_path):
    site.shop("store")
    site.add_post("store", "carved bangle", author="Mr Lee")
    (tmp_path / "watchlist.yaml").write_text(
        "targets:\n" + shop_target("store", f"{site.base_url}/shop/store")
    )
    probed = watcher("probe", "--target", "store", cwd=tmp_path)
    assert probed.returncode == 0, probed.stderr
    assert "1 post(s)" in probed.stdout and "'carved bangle'" in probed.stdout

    # --selector patches the target's recipe: the text now comes from the seller's name.
    patched = watcher("probe", "--target", "store", "--selector", "text=.seller", cwd=tmp_path)
    assert patched.returncode == 0, patched.stderr
    assert "'Mr Lee'" in patched.stdout and "carved bangle" not in patched.stdout

    unknown = watcher("probe", "--target", "stor", cwd=tmp_path)
    assert unknown.returncode == 1 and "no target named stor; known: store" in unknown.stderr
    bad_name = watcher("probe", "--target", "store", "--selector", "txt=.x", cwd=tmp_path)
    assert bad_name.returncode == 1 and "unknown name 'txt'" in bad_name.stderr
    nothing = watcher("probe", cwd=tmp_path)
    assert nothing.returncode == 1 and "--target NAME" in nothing.stderr


def _command_paths(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """Every command line that has a help page: (), ("check",), ("session", "import"), ..."""
    yield path
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _command_paths(child, (*path, name))


def test_every_help_page_has_a_description_and_an_example_in_plain_words(tmp_path):
    paths = list(_command_paths(build_parser()))
    assert ("probe",) in paths and ("session", "import") in paths and len(paths) > 15
    rest_markup = re.compile(r"``|:[a-z]+:`")
    for path in paths:
        result = watcher(*path, "--help", cwd=tmp_path)
        page = result.stdout
        assert result.returncode == 0, (path, result.stderr)
        assert re.search(r"^Examples?:$", page, re.MULTILINE), f"no example in {path} --help"
        assert re.search(rf"^  watcher {' '.join(path)}\b", page, re.MULTILINE), path
        description = page.split("\n\n")[1]  # after the usage block
        assert description and not description.startswith(("positional", "options")), path
        assert not rest_markup.search(page), f"reST markup in {path} --help"


# --watchlist, --data and --debug go before the command or after it: both must be honoured.
# (argparse's parents= pattern let a subcommand's defaults overwrite the values given before
# it, so `watcher --data DIR status` read ./data.)
def placed(where: str, options: list[str], command: list[str]) -> list[str]:
    return [*options, *command] if where == "before" else [*command, *options]


@pytest.mark.parametrize("where", ["before", "after"])
def test_watchlist_option_before_or_after_the_command(tmp_path, where):
    # No ./watchlist.yaml: a command that ignored --watchlist fails or reads ./data.
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "other.yaml").write_text(
        "targets:\n" + channel_target("dealer", "https://t.me/s/dealer")
    )
    option = ["--watchlist", "cases/other.yaml"]

    validated = watcher(*placed(where, option, ["validate"]), cwd=tmp_path)
    assert validated.returncode == 0, validated.stderr
    assert "cases/other.yaml: ok, 1 target(s)" in validated.stdout

    status = watcher(*placed(where, option, ["status"]), cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[1].startswith("dealer ")
    assert f"data: {cases / 'data'}" in status.stdout

    sessions = watcher(*placed(where, option, ["session", "list"]), cwd=tmp_path)
    assert sessions.returncode == 0, sessions.stderr
    assert f"no sessions in {cases / 'data' / 'sessions'}" in sessions.stdout


@pytest.mark.parametrize("where", ["before", "after"])
def test_data_option_before_or_after_the_command(tmp_path, where):
    (tmp_path / "watchlist.yaml").write_text(
        "targets:\n" + channel_target("dealer", "https://t.me/s/dealer")
    )
    elsewhere = tmp_path / "elsewhere"
    option = ["--data", str(elsewhere)]

    status = watcher(*placed(where, option, ["status"]), cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert f"data: {elsewhere}" in status.stdout
    assert (elsewhere / "watcher.db").exists() and not (tmp_path / "data").exists()

    sessions = watcher(*placed(where, option, ["session", "list"]), cwd=tmp_path)
    assert sessions.returncode == 0, sessions.stderr
    assert f"no sessions in {elsewhere / 'sessions'}" in sessions.stdout

    # verify reads only the bundle, but takes the common options like every command.
    verified = watcher(*placed(where, option, ["verify", "missing.zip"]), cwd=tmp_path)
    assert "unrecognized arguments" not in verified.stderr
    assert "NOT VERIFIED: missing.zip" in verified.stdout


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_option_before_or_after_the_command(tmp_path, where):
    # --debug shows the traceback behind a plain error.
    for command in (
        ["status", "--watchlist", "nope.yaml"],
        ["session", "check", "nobody", "--url", "http://127.0.0.1:9/"],
    ):
        plain = watcher(*command, cwd=tmp_path)
        assert plain.returncode == 1 and "Traceback" not in plain.stderr, plain.stderr
        debug = watcher(*placed(where, ["--debug"], command), cwd=tmp_path)
        assert debug.returncode == 1 and "Traceback" in debug.stderr, (command, debug.stderr)


def test_debug_before_or_after_verify_lists_every_check(site, tmp_path):
    bundle = exported_channel(site, tmp_path)

    key = str(tmp_path / "data" / "keys" / CUSTODY_KEY_NAME)
    plain = watcher("verify", str(bundle), "--key", key, cwd=tmp_path)
    assert plain.returncode == 0 and "VERIFIED" in plain.stdout, plain.stdout + plain.stderr
    assert "manifest" not in plain.stdout  # without --debug only failures are listed
    for where in ("before", "after"):
        command = ["verify", str(bundle), "--key", key]
        debug = watcher(*placed(where, ["--debug"], command), cwd=tmp_path)
        assert debug.returncode == 0, debug.stdout + debug.stderr
        # With it, every check that held too: the manifest's signature among them.
        assert "manifest" in debug.stdout, (where, debug.stdout)
        assert len(debug.stdout.splitlines()) > len(plain.stdout.splitlines()) + 5
