"""A store refusal in a capture is watcher's bug: the team is told so, and status shows it red.

The refusal is real: a trigger planted in the test's own database makes SQLite reject one
post's row with a constraint error, as a schema or code mistake of ours would.
"""

from __future__ import annotations

import sqlite3

from tests.conftest import checked_channel, watcher


def test_a_store_refusal_is_reported_as_a_bug_and_shown_red(site, tmp_path):
    checked_channel(site, tmp_path, "first")
    db = sqlite3.connect(tmp_path / "data" / "watcher.db")
    db.execute(
        "CREATE TRIGGER planted BEFORE INSERT ON post_versions WHEN NEW.text LIKE '%poison%' "
        "BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: planted'); END"
    )
    db.commit()
    db.close()
    site.add_post("dealer", "poison pill")

    failed = watcher("check", "--json", cwd=tmp_path)
    assert failed.returncode == 2
    assert '"reason": "store_bug"' in failed.stdout
    assert "bug in watcher, not a problem with the site" in failed.stdout
    assert "watcher check dealer --debug" in failed.stdout
    assert "UNIQUE constraint failed: planted" in failed.stdout

    coloured = watcher("status", cwd=tmp_path, env={"FORCE_COLOR": "1"})
    assert "\033[31mdealer" in coloured.stdout
    assert "cannot store its captures (a bug, not the site)" in coloured.stdout
    plain = watcher("status", cwd=tmp_path, env={"NO_COLOR": "1", "FORCE_COLOR": "1"})
    assert "\033[" not in plain.stdout and "a bug, not the site" in plain.stdout

    alerts = watcher("alerts", cwd=tmp_path)
    assert "bug in watcher" in alerts.stdout


def test_a_full_disk_is_not_called_a_bug():
    from watcher.store.db import _is_bug

    assert not _is_bug(sqlite3.OperationalError("database or disk is full"))
    assert not _is_bug(sqlite3.OperationalError("database is locked"))
    assert not _is_bug(sqlite3.DatabaseError("database disk image is malformed"))
    assert _is_bug(sqlite3.IntegrityError("UNIQUE constraint failed: posts.target"))
    assert _is_bug(sqlite3.OperationalError("no such column: nope"))
