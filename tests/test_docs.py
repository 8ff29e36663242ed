"""The docs keep themselves true: the module map names every module, the README every command.

As sqlite-utils tests its documentation: a module added under ``watcher/`` without a row in
``docs/architecture.md``, a row naming a file that is gone, or a command the README's table
leaves out fails here, naming what to add.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from watcher.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "docs" / "architecture.md"
README = ROOT / "README.md"


def _map_entries() -> list[str]:
    """The paths in the first column of the module map (files, and folders ending in /)."""
    entries = []
    for line in ARCHITECTURE.read_text(encoding="utf-8").splitlines():
        cell = re.match(r"\|\s*`(watcher/[^`]*)`\s*\|", line)
        if cell:
            entries.append(cell.group(1))
    return entries


def _modules() -> list[str]:
    """Every module of the package, as a path from the repository root."""
    return sorted(
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "watcher").rglob("*.py")
        if path.name not in ("__init__.py", "__main__.py")
    )


def _commands() -> list[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sorted(sub.choices)


def test_the_map_has_rows():
    # Guards the tests below against a table whose format changed so nothing parses.
    assert len(_map_entries()) > 30


@pytest.mark.parametrize("module", _modules())
def test_every_module_is_on_the_map(module: str):
    entries = _map_entries()
    covered = module in entries or any(
        entry.endswith("/") and module.startswith(entry) for entry in entries
    )
    assert covered, f"{module} is missing from docs/architecture.md's module table: add a row"


@pytest.mark.parametrize("entry", _map_entries())
def test_every_row_of_the_map_exists(entry: str):
    assert (ROOT / entry).exists(), f"docs/architecture.md names {entry}, which is not there"


def test_the_map_names_each_module_once():
    entries = _map_entries()
    assert sorted({e for e in entries if entries.count(e) > 1}) == []


@pytest.mark.parametrize("command", _commands())
def test_every_command_is_in_the_readme_table(command: str):
    rows = [line for line in README.read_text(encoding="utf-8").splitlines() if line[:1] == "|"]
    named = any(re.search(rf"`watcher {re.escape(command)}\b", row) for row in rows)
    assert named, f"`watcher {command}` is missing from the README's command table: add a row"


def test_package_data_globs_match_files():
    # Each glob in pyproject's package-data must find something: a stale one hides a typo.
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    block = re.search(r"\[tool\.setuptools\.package-data\]\s*watcher = \[([^\]]*)\]", text)
    assert block is not None
    for glob in re.findall(r'"([^"]+)"', block.group(1)):
        assert list((ROOT / "watcher").glob(glob)), f"package-data glob {glob!r} matches no file"
