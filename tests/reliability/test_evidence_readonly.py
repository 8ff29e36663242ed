"""No command writes into the evidence: every CLI command, realistic and hostile arguments.

A data folder is made by real `watcher check` runs of the fixture site (a channel with photos,
a shop, an edit in between). The evidence (size, sha256 and mode of every file under blobs/,
evidence/ and keys/, the custody mirror included) is snapshotted, then every `watcher`
command that does not capture runs as a real subprocess, one after the other, and after each
the snapshot must be exactly as before. `watcher export` is the one exception: it logs itself
in custody, so the mirror may grow by ``exported`` entries (never change). Commands that do
capture (`check`, `run`) may only add files: no existing one changes.

Hostile arguments: `--out` inside blobs/, evidence/ or keys/ (directly, nested, through
``../`` and through a symlink, and as the default "." run from inside evidence/), evidence
files given where a bundle, an image or a cookies file is expected, names with ``../``.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import channel_target, shop_target
from tests.reliability.evidence_state import (
    MIRROR,
    assert_only_appended,
    changes,
    check_database,
    run_cli,
    snapshot,
)
from watcher.cli import build_parser

REFUSED = "no command may write into"
COMMANDS_TRIED: list[str] = []  # for the report


def subcommands() -> set[str]:
    """Every top-level command the parser knows (built-ins and COMMAND_MODULES)."""
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    return set(sub.choices)


def db_value(data: Path, sql: str) -> object:
    with sqlite3.connect(data / "watcher.db") as db:
        return db.execute(sql).fetchone()[0]


@pytest.fixture
def folder(site, tmp_path) -> Path:
    """A test folder with watchlist.yaml and data/ holding two rounds of real captures."""
    site.channel("dealer")
    site.shop("front")
    site.add_post("dealer", "carved bangle, inbox +855 12 345 678", images=[site.add_photo("a", 1)])
    edited = site.add_post("dealer", "white gold 200$", images=[site.add_photo("b", 2)])
    site.add_post("front", "same bangle", images=[site.add_photo("c", 1, crop=0.1)])
    (tmp_path / "watchlist.yaml").write_text(
        "targets:\n"
        + channel_target("dealer", f"{site.base_url}/s/dealer", "    tags: [case-9]\n")
        + shop_target("front", f"{site.base_url}/shop/front")
    )
    first = run_cli("check", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    data = tmp_path / "data"
    # A capture only ever adds: the second one (an edit, a new post) changes no existing file.
    before = snapshot(data)
    site.edit_post("dealer", edited, text="white gold SOLD")
    site.add_post("dealer", "tusk pair", images=[site.add_photo("d", 4)])
    second = run_cli("check", "--json", cwd=tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    COMMANDS_TRIED.append("check --json")
    added = assert_only_appended(data, before, {"captured"}, new_files=True)
    assert len(added) == 2  # one custody entry per capture, appended
    assert changes(before, snapshot(data))["added"]  # the new screenshots, HTML, photo
    return tmp_path


def command_table(tmp: Path, data: Path, site) -> list[tuple[list[str], int, str, Path]]:
    """(args, expected exit code, text expected in the output, working folder) per run."""
    blob = next(p for p in (data / "blobs").rglob("*") if p.is_file())
    key = next((data / "keys").iterdir())
    custody = data / MIRROR
    image = Path(str(db_value(data, "SELECT sha256 FROM images LIMIT 1")))
    image = data / "blobs" / image.name[:2] / image.name[2:4] / image.name
    post = str(db_value(data, "SELECT post_id FROM posts WHERE target = 'dealer' LIMIT 1"))
    capture = str(db_value(data, "SELECT MAX(id) FROM captures"))
    cookies = tmp / "cookies.json"
    cookies.write_text(json.dumps([{"name": "sid", "value": "v", "domain": "127.0.0.1"}]))
    link = tmp / "to-evidence"
    link.symlink_to(data / "evidence", target_is_directory=True)
    out = tmp / "out"
    url = f"{site.base_url}/s/dealer"
    ok, fail = 0, 1
    runs: list[tuple[list[str], int, str, Path]] = [
        (["--version"], ok, "watcher", tmp),
        (["validate"], ok, "ok", tmp),
        (["status"], ok, "dealer", tmp),
        (["alerts"], ok, "", tmp),
        (["alerts", "--limit", "0"], ok, "", tmp),
        (["alerts", "--limit", "-5"], 2, "give 0 or more", tmp),
        (["links"], ok, "", tmp),
        (["links", "dealer"], ok, "", tmp),
        (["links", "../../evidence"], fail, "no target named", tmp),
        (["similar", str(image)], ok, "same photo", tmp),
        (["similar", str(key)], fail, "", tmp),
        (["similar", str(custody), "--limit", "3"], fail, "", tmp),
        (["verify", str(custody)], fail, "NOT VERIFIED", tmp),
        (["verify", str(blob), str(key)], fail, "NOT VERIFIED", tmp),
        (["verify", str(custody), "--key", str(key)], fail, "NOT VERIFIED", tmp),
        (["key"], ok, "fingerprint", tmp),
        (["key", "--pem"], ok, "PUBLIC KEY", tmp),
        (["export", "--target", "dealer", "--out", str(out)], ok, "KiB", tmp),
        (["export", "--tag", "case-9", "--out", str(out), "--max-mb", "0"], ok, "part1of", tmp),
        (["export", "--post", post, "--out", str(out)], ok, "KiB", tmp),
        (["export", "--capture", capture, "--out", str(out)], ok, "KiB", tmp),
        (["export", "--since", "2000-01-01T00:00:00Z", "--out", str(out)], ok, "KiB", tmp),
        (["export", "--since", "yesterday", "--out", str(out)], fail, "not a time", tmp),
        (["export", "--target", "nobody", "--out", str(out)], fail, "nothing to export", tmp),
        (["export", "--target", "dealer", "--out", str(data)], ok, "KiB", tmp),
        (["export", "--target", "dealer", "--out", str(data / "blobs")], fail, REFUSED, tmp),
        (["export", "--target", "dealer", "--out", str(blob.parent)], fail, REFUSED, tmp),
        (["export", "--target", "dealer", "--out", "data/blobs/new/x"], fail, REFUSED, tmp),
        (["export", "--target", "dealer", "--out", str(data / "evidence")], fail, REFUSED, tmp),
        (["export", "--target", "dealer", "--out", str(data / "keys")], fail, REFUSED, tmp),
        (["export", "--target", "dealer", "--out", "out/../data/evidence"], fail, REFUSED, tmp),
        (["export", "--target", "dealer", "--out", "data/./keys/"], fail, REFUSED, tmp),
        (["export", "--target", "dealer", "--out", str(link)], fail, REFUSED, tmp),
        (["export", "--target", "dealer", "--out", str(link / "sub")], fail, REFUSED, tmp),
        # The default --out "." run from inside the evidence folder.
        (
            ["export", "--target", "dealer", "--watchlist", str(tmp / "watchlist.yaml")],
            fail,
            REFUSED,
            data / "evidence",
        ),
        (["dealers"], ok, "", tmp),
        (["dealer", "nobody"], fail, "nobody", tmp),
        (["dealer", "../evidence/x", "--reject", "a,b"], fail, "", tmp),
        # Reads photos not read yet: it may add `photo_read` custody entries, nothing else.
        (["ocr", "--limit", "1"], ok, "photo(s) not read yet", tmp),
        (["session", "list"], ok, "no sessions", tmp),
        (["session", "import", "../evidence/x", str(cookies)], fail, "", tmp),
        (["session", "import", "puppet", str(custody)], fail, "", tmp),
        (["session", "import", "puppet", str(cookies)], ok, "1 cookie", tmp),
        (["session", "list"], ok, "puppet", tmp),
        (["session", "check", "puppet", "--url", url], fail, "refused", tmp),
        (
            ["session", "check", "puppet", "--url", url, "--allow-private-network"],
            ok,
            "logged in",
            tmp,
        ),
        (["session", "check", "../keys", "--url", url], fail, "", tmp),
        (["session", "login", "puppet", "--url", url], fail, "no screen", tmp),
        (["probe", url, "--platform", "telegram"], fail, "refused", tmp),
        (["probe", url, "--platform", "telegram", "--allow-private-network"], ok, "post(s)", tmp),
        (
            [
                "probe",
                url,
                "--platform",
                "telegram",
                "--session",
                "puppet",
                "--json",
                "--allow-private-network",
            ],
            ok,
            "",
            tmp,
        ),
        (["probe", url, "--platform", "telegram", "--session", "../keys/x"], fail, "", tmp),
        (
            [
                "probe",
                url,
                "--platform",
                "generic",
                "--selector",
                "post=.x",
                "--allow-private-network",
            ],
            2,
            "no posts",
            tmp,
        ),
    ]
    return runs


def test_no_command_writes_into_the_evidence(folder, site, record_property):
    data = folder / "data"
    runs = command_table(folder, data, site)
    before = current = snapshot(data)
    tried = {args[0].lstrip("-") for args, *_ in runs}
    # Every command but the capturing ones (check, run, demo: tested below) is in the table;
    # a new command fails this line until it is added here.
    assert subcommands() - {"check", "run", "demo"} <= tried, subcommands() - tried
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    for args, expected, words, cwd in runs:
        COMMANDS_TRIED.append(" ".join(args))
        done = subprocess.run(
            [sys.executable, "-m", "watcher", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=180,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        said = done.stdout + done.stderr
        assert done.returncode == expected, f"{args}: exit {done.returncode}\n{said}"
        assert words in said, f"{args}: {said}"
        assert "Traceback" not in said, f"{args}: {said}"
        if args[0] == "export":
            added = assert_only_appended(data, current, {"exported"})
            assert len(added) == (expected == 0), added  # logged once, when it exported
            current = snapshot(data)
        elif args[0] == "ocr":
            added = assert_only_appended(data, current, {"photo_read"})
            assert len(added) <= 1, added  # --limit 1: one photo read at most
            current = snapshot(data)
        else:
            assert changes(current, snapshot(data)) == {"changed": [], "removed": [], "added": []}
    added = assert_only_appended(data, before, {"exported", "photo_read"})  # over the run
    exports = db_value(data, "SELECT COUNT(*) FROM custody WHERE action = 'exported'")
    reads = db_value(data, "SELECT COUNT(*) FROM custody WHERE action = 'photo_read'")
    assert exports + reads == len(added)
    assert exports == sum(1 for a, code, *_ in runs if a[0] == "export" and code == 0)
    check_database(data, folder / "watchlist.yaml")
    figures = {"commands": len(runs), "files_checked": len(before), "exports": exports}
    record_property("figures", figures)
    print("evidence read-only:", figures)


def test_watcher_run_only_adds_to_the_evidence(folder, site):
    data = folder / "data"
    before = snapshot(data)
    captures = db_value(data, "SELECT COUNT(*) FROM captures")
    site.add_post("dealer", "while the daemon runs", images=[site.add_photo("e", 5)])
    process = subprocess.Popen(
        [sys.executable, "-m", "watcher", "run"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    COMMANDS_TRIED.append("run")
    try:
        deadline = time.monotonic() + 90
        while db_value(data, "SELECT COUNT(*) FROM captures") < captures + 2:
            assert process.poll() is None, process.stdout.read().decode()
            assert time.monotonic() < deadline, "no capture within 90 s"
            time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0].decode()
    assert process.returncode == 0, output
    added = assert_only_appended(data, before, {"captured", "capture_failed"}, new_files=True)
    assert len(added) >= 2
    check_database(data, folder / "watchlist.yaml")
