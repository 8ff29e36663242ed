"""The command line as a user runs it: a real process, real files, the fixture site."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import channel_target, shop_target


def watcher(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "watcher", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )


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
    site.channel("dealer")
    site.add_post("dealer", "one")
    (tmp_path / "watchlist.yaml").write_text(
        "targets:\n" + channel_target("dealer", f"{site.base_url}/s/dealer")
    )
    assert watcher("check", cwd=tmp_path).returncode == 0
    exported = watcher("export", "--target", "dealer", "--out", "bundles", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    (bundle,) = (tmp_path / "bundles").glob("*.zip")

    plain = watcher("verify", str(bundle), cwd=tmp_path)
    assert plain.returncode == 0 and "VERIFIED" in plain.stdout, plain.stdout + plain.stderr
    assert "manifest" not in plain.stdout  # without --debug only failures are listed
    for where in ("before", "after"):
        debug = watcher(*placed(where, ["--debug"], ["verify", str(bundle)]), cwd=tmp_path)
        assert debug.returncode == 0, debug.stdout + debug.stderr
        # With it, every check that held too: the manifest's signature among them.
        assert "manifest" in debug.stdout, (where, debug.stdout)
        assert len(debug.stdout.splitlines()) > len(plain.stdout.splitlines()) + 5
