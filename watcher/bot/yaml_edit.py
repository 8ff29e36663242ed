"""Adding a target to ``watchlist.yaml`` from the chat, keeping the file as people wrote it.

A round-trip YAML editor (ruamel.yaml) keeps comments, key order, quoting and indentation;
the new file is checked with the same loader ``watcher run`` uses before it replaces the old
one, atomically, so the running daemon never reads a half-written or invalid watchlist.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.util import load_yaml_guess_indent

from watcher.errors import WatcherError, WatchlistError
from watcher.store.blobs import sha256_hex
from watcher.watchlist import Watchlist, parse_watchlist

_TELEGRAM_HOSTS = {"t.me", "telegram.me", "www.t.me"}
_CHANNEL = re.compile(r"^/(?:s/)?(?P<channel>[A-Za-z][A-Za-z0-9_]{3,63})/?$")
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True, slots=True)
class NewTarget:
    """A target to add: the three keys every target needs (the rest come from defaults)."""

    name: str
    platform: str
    url: str
    selectors: dict[str, str] | None = None  # a generic target's recipe (probe --suggest)


def propose(watchlist: Watchlist, url: str, name: str | None) -> NewTarget:
    """The target ``/watch URL [NAME]`` asks for; WatcherError says why it cannot be added."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WatcherError(f"{url!r} is not a web address; send /watch https://t.me/channel")
    match = _CHANNEL.match(parts.path)
    if parts.hostname.lower() not in _TELEGRAM_HOSTS or match is None:
        # A listing page needs CSS selectors for its parts: a person has to write them.
        raise WatcherError(
            "only public Telegram channels (https://t.me/NAME) can be added from the chat; "
            "add other pages with their selectors in watchlist.yaml"
        )
    channel = match["channel"]
    target = NewTarget(_clean_name(name or channel), "telegram", f"https://t.me/s/{channel}")
    for known in watchlist.targets:
        if known.name == target.name:
            raise WatcherError(f"a target named {target.name} exists; choose another name")
        if known.url.rstrip("/").lower() == target.url.lower():
            raise WatcherError(f"{target.url} is already watched as {known.name}")
    return target


def add_target(path: Path, target: NewTarget) -> tuple[str, str]:
    """Append ``target`` to the watchlist file; returns the SHA-256 of the file before and after.

    Raises WatcherError (with the loader's explanation) when the result would not be a valid
    watchlist, leaving the file as it was.
    """
    before = path.read_text(encoding="utf-8")
    after = _with_target(before, target)
    try:
        parse_watchlist(after, str(path))
    except WatchlistError as exc:
        raise WatcherError(f"the watchlist would not be valid with {target.name}:\n{exc}") from exc
    _replace(path, after)
    return sha256_hex(before.encode("utf-8")), sha256_hex(after.encode("utf-8"))


def _with_target(text: str, target: NewTarget) -> str:
    try:
        _guess, indent, block_seq_indent = load_yaml_guess_indent(text)
        yaml = _round_trip(indent, block_seq_indent)
        data = yaml.load(text)  # loaded again: only this loader keeps the quotes
    except YAMLError as exc:
        raise WatcherError(f"the watchlist cannot be read as YAML ({exc}); fix it first") from exc
    if not isinstance(data, CommentedMap) or not isinstance(data.get("targets"), CommentedSeq):
        raise WatcherError("the watchlist has no `targets:` list to add to; fix it first")
    entry = CommentedMap([("name", target.name), ("platform", target.platform)])
    entry["url"] = target.url
    if target.selectors:
        entry["selectors"] = CommentedMap(target.selectors.items())
    data["targets"].append(entry)
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def _round_trip(indent: int | None, block_seq_indent: int | None) -> YAML:
    yaml = YAML()  # round-trip mode: comments and order survive
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap people's long lines
    sequence = indent or 2
    offset = block_seq_indent or 0
    yaml.indent(mapping=max(sequence - offset, 2), sequence=sequence, offset=offset)
    return yaml


def _replace(path: Path, text: str) -> None:
    """Write ``text`` over ``path`` atomically, keeping the file's permissions."""
    mode = path.stat().st_mode & 0o7777
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise WatcherError(f"cannot write {path} ({exc.strerror}); check its permissions") from exc


def _clean_name(name: str) -> str:
    cleaned = _NAME_CHARS.sub("-", name.strip()).strip("-.")[:60]
    if not cleaned:
        raise WatcherError("give the target a name of letters, digits, _ . or -")
    return cleaned
