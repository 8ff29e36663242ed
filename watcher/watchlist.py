"""Load and check ``watchlist.yaml``, the file investigators edit by hand.

Every problem in the file is reported at once, each with its line number and a fix written
for someone who is not a programmer, so a broken watchlist takes one round of edits to
repair rather than one round per mistake.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from watcher.alert.sinks import registered_sinks
from watcher.capture.adapters import Adapter, adapter_for, known_platforms
from watcher.capture.polite import HostLimit
from watcher.capture.recipe import RECIPE_FIELDS, Selector
from watcher.errors import WatcherError, WatchlistError, WatchlistProblem
from watcher.kinds import default_kinds
from watcher.models import EventKind
from watcher.timeutil import format_duration, parse_duration

Loc = tuple[str | int, ...]

MIN_EVERY = 5.0
MAX_PAGES = 50
MAX_CONCURRENT = 16
DURATION_FIX = "write a number and a unit, e.g. 30s, 15m, 2h, 1d"
YAML_FIX = "check the indentation and that every `key: value` has a space after the colon"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_NAME_FIX = (
    "use only letters, digits, `_`, `.` and `-` (no spaces), start with a letter or digit, "
    "at most 64 characters, e.g. ivory-market-1"
)
_SELECTOR_EXAMPLES = {"post": ".listing", "id": "@data-id", "text": ".description"}
_DEFAULT_KINDS = default_kinds()  # every kind but watchlist_invalid (each chat gets that)
# Keys the loader fills in itself; a `path:` written in the file is a mistake.
_INTERNAL_KEYS = frozenset({"path"})


# -- field validators ----------------------------------------------------------------------
def _invalid(message: str, fix: str) -> PydanticCustomError:
    """An error carrying our own wording, which the loader reports unchanged."""
    return PydanticCustomError("watchlist", "{message}", {"message": message, "fix": fix})


# For the validators of sections defined beside their sinks (watcher.alert).
invalid = _invalid


def _seconds(value: Any) -> float:
    if value is None or value == "":
        raise _invalid("no length of time is given", DURATION_FIX)
    number = _bare_number(value)
    # `every: 10` could mean seconds or minutes; guessing wrong captures 60 times too often
    # (a ban) or too rarely (a missed deletion). 0 is 0 in any unit; below 0 the range
    # checks explain.
    if number is not None and number > 0:
        shown = f"{number:g}"
        fix = f"write {shown}s or {shown}m; " if number == int(number) else ""
        raise _invalid(f"`{shown}` has no unit (seconds? minutes?)", fix + DURATION_FIX)
    try:
        return parse_duration(value)
    except ValueError:
        raise _invalid(f"`{value}` is not a length of time", DURATION_FIX) from None


def _bare_number(value: Any) -> float | None:
    """``value`` as a number when it is one written without a unit (10, 2.5, "10")."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value if isinstance(value, int | float) else str(value).strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _at_least(minimum: float) -> AfterValidator:
    def check(seconds: float) -> float:
        if seconds < minimum:
            raise _invalid(
                f"{format_duration(seconds) if seconds >= 0 else seconds} is too short "
                f"(the minimum is {format_duration(minimum)})",
                f"{DURATION_FIX}, of at least {format_duration(minimum)}",
            )
        return seconds

    return AfterValidator(check)


def _not_negative(seconds: float) -> float:
    if seconds < 0:
        raise _invalid(f"{seconds:g} is below zero", f"{DURATION_FIX}, or 0 for none")
    return seconds


def _no_bool(value: Any) -> Any:
    # YAML reads yes/no/on/off as true/false, which pydantic would quietly turn into 1/0.
    if isinstance(value, bool):
        raise _invalid(
            f"this should be a whole number, not `{'yes' if value else 'no'}`",
            "write a whole number such as 3, without quotes, units or decimals",
        )
    return value


def _check_concurrency(pages: int) -> int:
    if not 1 <= pages <= MAX_CONCURRENT:
        raise _invalid(
            f"{pages} pages at once is out of range",
            f"write a number from 1 to {MAX_CONCURRENT}; 2 suits a 2-core machine, 4 if it "
            "has 8 GB of memory to spare",
        )
    return pages


def _check_pages(pages: int) -> int:
    if not 1 <= pages <= MAX_PAGES:
        raise _invalid(f"{pages} pages is out of range", f"write a number from 1 to {MAX_PAGES}")
    return pages


def _check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in url.strip():
        raise _invalid(
            f"`{url}` is not a web address",
            "write the full address starting with https:// (or http://), "
            "e.g. https://t.me/s/channelname",
        )
    return url.strip()


def _none_as_empty(value: Any) -> Any:
    # A key left blank (`tags:`) reads as null; investigators mean "none".
    return {} if value is None else value


def _none_as_empty_list(value: Any) -> Any:
    return [] if value is None else value


def _check_selector_name(name: str) -> str:
    if name not in RECIPE_FIELDS:
        raise _invalid(f"unknown selector name `{name}`", _choose_fix(name, RECIPE_FIELDS))
    return name


def _check_selector_text(text: Any) -> Any:
    if text is None or (isinstance(text, str) and not text.strip()):
        raise _invalid(
            "the selector is empty",
            'write a CSS selector in double quotes, e.g. ".listing" or "@data-id", '
            "or remove the line",
        )
    if isinstance(text, str):
        Selector.parse(text)
    return text


def _check_kind(kind: str) -> str:
    kinds = [k.value for k in EventKind]
    if kind not in kinds:
        raise _invalid(f"unknown alert kind `{kind}`", _choose_fix(kind, kinds))
    return kind


def _choose_fix(word: str, allowed: list[str] | tuple[str, ...]) -> str:
    """'did you mean X? use one of: ...' with the closest allowed word, if any is close."""
    close = difflib.get_close_matches(str(word), list(allowed), n=1, cutoff=0.6)
    hint = f"did you mean `{close[0]}`? " if close else ""
    return f"{hint}use one of: {', '.join(allowed)}"


Every = Annotated[float, BeforeValidator(_seconds), _at_least(MIN_EVERY)]
Jitter = Annotated[float, BeforeValidator(_seconds), AfterValidator(_not_negative)]
Timeout = Annotated[float, BeforeValidator(_seconds), _at_least(1.0)]
# How often a capture is a full one when the page looks unchanged; 0: every capture is full.
FullEvery = Annotated[float, BeforeValidator(_seconds), AfterValidator(_not_negative)]
WholeNumber = Annotated[int, BeforeValidator(_no_bool)]
Pages = Annotated[WholeNumber, AfterValidator(_check_pages)]
Concurrency = Annotated[WholeNumber, AfterValidator(_check_concurrency)]
Url = Annotated[str, AfterValidator(_check_url)]
SelectorName = Annotated[str, AfterValidator(_check_selector_name)]
SelectorText = Annotated[str, BeforeValidator(_check_selector_text)]
Kind = Annotated[str, AfterValidator(_check_kind)]


# -- the models ----------------------------------------------------------------------------
class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Model):
    """Values a target takes when it does not set its own."""

    every: Every = 900.0
    jitter: Jitter = 60.0
    pages: Pages = 1
    timeout: Timeout = 45.0
    full_every: FullEvery = 0.0


class Target(_Model):
    """One page to watch."""

    name: str
    platform: str
    url: Url
    every: Every = 900.0
    jitter: Jitter = 60.0
    pages: Pages = 1
    timeout: Timeout = 45.0
    # Between full captures, a capture may be a light check (the page without its images,
    # no screenshot) that becomes a full capture the moment a post differs. 0: always full.
    full_every: FullEvery = 0.0
    tags: Annotated[tuple[str, ...], BeforeValidator(_none_as_empty_list)] = ()
    session: str | None = None
    alert_on: Literal["all", "keyword"] = "all"
    selectors: Annotated[dict[SelectorName, SelectorText], BeforeValidator(_none_as_empty)] = Field(
        default_factory=dict
    )
    # Listing pages that go on: a "next/older" link, a "load more" button, or infinite scroll
    # (how many screens down); `pages` bounds how far any of them goes.
    next_page: SelectorText | None = None
    load_more: SelectorText | None = None
    scroll: Annotated[int, Field(ge=0, le=50)] = 0
    # Open each new listing's own page and keep it as evidence too.
    detail: bool = False
    # Let the browser and image downloads reach loopback, private, link-local and metadata
    # addresses (a page on the team's own network, the demo site). Off: a hostile page's
    # images and redirects cannot reach the team's router or NAS. Never set by the bot's /watch.
    allow_private_network: bool = False
    # The MHTML snapshot (the page as one file, every photo inside as base64: ~7 MiB on a
    # page of 200 photos) on every changed capture; off, only on the target's first. The
    # web archive (WACZ) of every capture holds the same responses and replays the page.
    keep_mhtml: bool = False

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        if not _NAME.match(name):
            raise _invalid(f"the name `{name}` cannot be used in file names", _NAME_FIX)
        return name

    @field_validator("platform")
    @classmethod
    def _check_platform(cls, platform: str) -> str:
        if platform not in known_platforms():
            raise _invalid(
                f"unknown platform `{platform}`", _choose_fix(platform, known_platforms())
            )
        return platform

    def adapter(self) -> Adapter:
        """The platform's adapter with this target's selectors patched into its recipe."""
        return adapter_for(self.platform, self.selectors)


class AlertSection(_Model):
    """One sink's section of ``alerts:``, the base of every sink's ``config_model``
    (watcher.alert.sinks): the kinds its destinations want, and where they are."""

    kinds: list[Kind] = Field(default_factory=lambda: list(_DEFAULT_KINDS))

    def addresses(self) -> list[str]:
        """The destinations alerts go to, as the outbox names them (chats, a file)."""
        raise NotImplementedError


class Alerts(_Model):
    """Alert sinks, one section each, keyed by the sink's registered name; none configured
    means alerts are only shown on the console.

    Each section is read by its sink's own model, looked up when a watchlist is read (the
    sinks' modules import this one, so they are not known while it is defined).
    """

    @model_validator(mode="wrap")
    @classmethod
    def _by_registered_sinks(cls, data: Any, handler: Any) -> Any:
        model = _alerts_model()
        return handler(data) if cls is model else model.model_validate(data)

    def configured(self) -> dict[str, AlertSection]:
        """Each sink's section the watchlist fills in, by the sink's name."""
        sections = {name: getattr(self, name) for name in type(self).model_fields}
        return {name: section for name, section in sections.items() if section is not None}


def _alerts_model() -> type[Alerts]:
    """``Alerts`` with a field for each registered sink: its section, or None."""
    sinks = registered_sinks()
    return _alerts_with(tuple((name, sinks[name].config_model) for name in sorted(sinks)))


@functools.cache
def _alerts_with(sections: tuple[tuple[str, type[AlertSection]], ...]) -> type[Alerts]:
    # One class per set of sinks, so watchlists read alike compare equal (live reload).
    fields: dict[str, Any] = {name: (model | None, None) for name, model in sections}
    return create_model("Alerts", __base__=Alerts, __module__=__name__, **fields)


class Images(_Model):
    """Images the team already knows (file paths), matched against captured images; and
    whether ``watcher run`` reads the text in captured photos (OCR, ``ocr: false`` stops it)."""

    known: Annotated[list[str], BeforeValidator(_none_as_empty_list)] = Field(default_factory=list)
    ocr: bool = True


class Evidence(_Model):
    """Evidence settings: an optional RFC 3161 timestamp authority for exported bundles."""

    tsa_url: str | None = None
    tsa_ca_file: str | None = None  # the TSA's CA certificate (PEM), shipped with bundles


class Dealers(_Model):
    """How accounts are tied into dealers (see ``watcher dealers``)."""

    # A photo, link or handle seen on more accounts than this is common (a stock photo):
    # listed as evidence, never enough to join accounts.
    common_after: Annotated[int, Field(ge=2, le=1000)] = 3
    # A dealer whose accounts all posted nothing for this long (or are blocked) is gone: a new
    # account tied to it is announced as the dealer come back.
    silent_after: Annotated[float, BeforeValidator(_seconds), AfterValidator(_not_negative)] = (
        14 * 86400.0
    )


class BrowserEndpoint(_Model):
    """A browser on another machine (``browsers:``): a Playwright server or a Chromium's
    DevTools endpoint, and how many pages it may load at once."""

    url: str
    slots: Annotated[WholeNumber, Field(ge=1, le=64)] = 2
    # playwright: `playwright run-server` / launchServer (Playwright's own protocol);
    # cdp: a Chromium started with --remote-debugging-port, or a browserless container.
    # Left out: cdp for http(s):// and ws://.../devtools/browser/..., else playwright.
    kind: Literal["playwright", "cdp"] | None = None
    name: str | None = None

    @field_validator("url")
    @classmethod
    def _check_endpoint_url(cls, url: str) -> str:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("ws", "wss", "http", "https") or not parts.hostname:
            raise _invalid(
                f"`{url}` is not a browser endpoint address",
                "write the ws:// address a Playwright server prints (e.g. "
                "ws://10.0.0.5:3000/), or the http:// address of a Chromium's "
                "--remote-debugging-port (e.g. http://10.0.0.6:9222)",
            )
        return url.strip()

    @field_validator("name")
    @classmethod
    def _check_endpoint_name(cls, name: str | None) -> str | None:
        if name is not None and not _NAME.match(name):
            raise _invalid(f"the name `{name}` cannot be used for a browser", _NAME_FIX)
        return name

    def protocol(self) -> Literal["playwright", "cdp"]:
        """How watcher talks to it: ``kind``, else what its address says."""
        if self.kind:
            return self.kind
        parts = urlsplit(self.url)
        cdp = parts.scheme in ("http", "https") or parts.path.startswith("/devtools/")
        return "cdp" if cdp else "playwright"

    def label(self) -> str:
        """Its name, else ``host:port``: never the path or query, which may hold a token."""
        return self.name or address_of(self.url)


def address_of(url: str) -> str:
    """``host:port`` of an endpoint URL, without user, path or query (where tokens live)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    host = f"[{host}]" if ":" in host else host
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port else host


def _check_host_concurrency(pages: int) -> int:
    if not 1 <= pages <= MAX_CONCURRENT:
        raise _invalid(
            f"{pages} pages of one site at once is out of range",
            f"write a number from 1 to {MAX_CONCURRENT}; 1 or 2 is polite",
        )
    return pages


class HostSettings(_Model):
    """How hard one site may be visited: pages at once, and the least time between two."""

    concurrent: Annotated[WholeNumber, AfterValidator(_check_host_concurrency)] = 2
    spacing: Jitter = 0.5

    def limit(self) -> HostLimit:
        return HostLimit(self.concurrent, self.spacing)


class Watchlist(_Model):
    """The whole watchlist file, with each target's gaps filled from ``defaults``."""

    path: str | None = None
    operator: str | None = None
    defaults: Annotated[Defaults, BeforeValidator(_none_as_empty)] = Field(default_factory=Defaults)
    targets: Annotated[list[Target], BeforeValidator(_none_as_empty_list)]
    # Validated even when left out: the sections are the registered sinks' (see Alerts).
    alerts: Annotated[Alerts, BeforeValidator(_none_as_empty)] = Field(
        default_factory=dict, validate_default=True
    )
    admins: Annotated[list[WholeNumber], BeforeValidator(_none_as_empty_list)] = Field(
        default_factory=list
    )
    members: Annotated[list[WholeNumber], BeforeValidator(_none_as_empty_list)] = Field(
        default_factory=list
    )
    keywords: Annotated[dict[str, list[str]], BeforeValidator(_none_as_empty)] = Field(
        default_factory=dict
    )
    images: Annotated[Images, BeforeValidator(_none_as_empty)] = Field(default_factory=Images)
    # Keyword lexicon files (paths relative to the watchlist); "default" is the bundled one.
    lexicons: Annotated[list[str], BeforeValidator(_none_as_empty_list)] = Field(
        default_factory=lambda: ["default"]
    )
    evidence: Annotated[Evidence, BeforeValidator(_none_as_empty)] = Field(default_factory=Evidence)
    dealers: Annotated[Dealers, BeforeValidator(_none_as_empty)] = Field(default_factory=Dealers)
    # Pages captured at once (light checks: twice as many); read when watcher starts.
    max_concurrent: Concurrency = 2
    # Browsers on other machines (read at start; WATCHER_BROWSERS overrides). None: the
    # local Chromium, `max_concurrent` pages at once.
    browsers: Annotated[list[BrowserEndpoint], BeforeValidator(_none_as_empty_list)] = Field(
        default_factory=list
    )

    # Per-site politeness by host name (e.g. `t.me: {concurrent: 2, spacing: 1s}`); a site
    # not listed gets its platform's default (watcher.capture.polite.PLATFORM_LIMITS).
    hosts: Annotated[dict[str, HostSettings], BeforeValidator(_none_as_empty)] = Field(
        default_factory=dict
    )

    def host_limits(self) -> dict[str, HostLimit]:
        """The ``hosts:`` limits by lower-case host name."""
        return {host.lower().rstrip("."): s.limit() for host, s in self.hosts.items()}

    def folder(self) -> Path:
        """The folder relative paths in the watchlist (lexicons, reference photos) start from."""
        return Path(self.path).parent if self.path else Path.cwd()

    @model_validator(mode="before")
    @classmethod
    def _merge_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("targets"), list):
            return data
        written = _none_as_empty(data.get("defaults", {}))
        try:
            Defaults.model_validate(written)
        except ValidationError:
            # Reported once under `defaults`; targets keep the built-in values meanwhile
            # so a bad default is not repeated as a problem in every target.
            return data
        # The values as written, not `defaults.model_dump()`: those are seconds as bare
        # numbers, which a target's own check refuses (a unit is required). Keys left out
        # of `defaults` take the same built-in values in Target.
        targets = [{**written, **t} if isinstance(t, dict) else t for t in data["targets"]]
        return {**data, "targets": targets}

    @field_validator("targets")
    @classmethod
    def _need_a_target(cls, targets: list[Target]) -> list[Target]:
        if not targets:
            raise _invalid("there are no targets to watch", _TARGETS_FIX)
        return targets

    def find(self, name: str) -> Target | None:
        """The target called ``name``, or None (an event of a target since removed)."""
        return next((t for t in self.targets if t.name == name), None)

    def target(self, name: str) -> Target:
        """The target called ``name``; WatcherError naming the known ones if there is none."""
        found = self.find(name)
        if found is None:
            raise WatcherError(f"no target named {name}; known: {self._known_names()}")
        return found

    def select(self, names: list[str]) -> list[Target]:
        """The named targets in the order given (every target when ``names`` is empty)."""
        if not names:
            return list(self.targets)
        by_name = {t.name: t for t in self.targets}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise WatcherError(
                f"no target named {', '.join(unknown)}; known: {self._known_names()}"
            )
        return [by_name[n] for n in dict.fromkeys(names)]

    def _known_names(self) -> str:
        return ", ".join(t.name for t in self.targets)


_TARGETS_FIX = (
    "add a `targets:` list with at least one target, e.g.\n"
    "targets:\n  - name: ivory-channel\n    platform: telegram\n"
    "    url: https://t.me/s/channelname"
)


# -- loading -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckedWatchlist:
    """A watchlist that loaded, with what is allowed but probably not meant (``warnings``)."""

    watchlist: Watchlist
    warnings: tuple[WatchlistProblem, ...] = ()


def load_watchlist(path: str | Path) -> Watchlist:
    """Read and check a watchlist file; WatchlistError lists every problem found."""
    return check_watchlist(path).watchlist


def check_watchlist(path: str | Path) -> CheckedWatchlist:
    """:func:`load_watchlist` with the warnings (``watcher validate`` prints them)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _file_error(str(path), "the file does not exist", "check the path") from None
    except UnicodeDecodeError:
        raise _file_error(
            str(path), "the file is not plain text (UTF-8)", "save it as UTF-8 text"
        ) from None
    except OSError as exc:
        raise _file_error(
            str(path),
            f"the file cannot be read ({exc.strerror})",
            "check the path and its permissions",
        ) from None
    checked = _check_text(text, str(path))
    watchlist = checked.watchlist.model_copy(update={"path": str(file.resolve())})
    return CheckedWatchlist(watchlist, checked.warnings)


def parse_watchlist(text: str, path: str = "<watchlist>") -> Watchlist:
    """Check watchlist text; WatchlistError (naming ``path``) lists every problem found."""
    return _check_text(text, path).watchlist


def _check_text(text: str, path: str) -> CheckedWatchlist:
    try:
        data, lines = _read_yaml(text)
    except yaml.YAMLError as exc:
        raise WatchlistError(path, [_yaml_problem(exc, text)]) from None
    problems = _shape_problems(data, lines)
    if problems:
        raise WatchlistError(path, problems)
    watchlist: Watchlist | None = None
    try:
        watchlist = Watchlist.model_validate({k: v for k, v in data.items() if k != "path"})
    except ValidationError as exc:
        problems += [_pydantic_problem(e, data, lines) for e in exc.errors()]
    problems += _cross_target_problems(data, lines)
    if problems or watchlist is None:
        raise WatchlistError(path, sorted(problems, key=lambda p: (p.line or 0, p.where)))
    return CheckedWatchlist(watchlist, tuple(_warnings(watchlist, data, lines)))


def _file_error(path: str, message: str, fix: str) -> WatchlistError:
    return WatchlistError(path, [WatchlistProblem(None, "", message, fix)])


# -- YAML and line numbers -----------------------------------------------------------------
class _Lines:
    """1-based line of each key or list item, by its path such as ("targets", 1, "every")."""

    def __init__(self) -> None:
        self.by_path: dict[Loc, int] = {}
        self.duplicates: list[tuple[Loc, int, int]] = []  # path, first line, repeat line

    def line(self, loc: Loc) -> int | None:
        """Line of ``loc`` or, when it is not in the file (a missing key), of its parent."""
        for end in range(len(loc), -1, -1):
            line = self.by_path.get(loc[:end]) or self.by_path.get(_as_text(loc[:end]))
            if line is not None:
                return line
        return None

    def walk(self, node: yaml.Node, path: Loc, stack: frozenset[int] = frozenset()) -> None:
        self.by_path.setdefault(path, node.start_mark.line + 1)
        if id(node) in stack:  # a recursive alias (&a [*a]) would never end
            return
        stack = stack | {id(node)}
        if isinstance(node, yaml.MappingNode):
            self._walk_mapping(node, path, stack)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.walk(item, (*path, index), stack)

    def _walk_mapping(self, node: yaml.MappingNode, path: Loc, stack: frozenset[int]) -> None:
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key, line = str(key_node.value), key_node.start_mark.line + 1
            if key in seen and key != "<<":
                self.duplicates.append(((*path, key), seen[key], line))
            seen[key] = line
            # The last of duplicated keys is the one YAML keeps, so point at that one.
            self.by_path[(*path, key)] = line
            self.walk(value_node, (*path, key), stack)


def _as_text(loc: Loc) -> Loc:
    # YAML keys such as `1:` are numbers in the data but text in the map.
    return tuple(str(p) if not isinstance(p, str) else p for p in loc)


def _read_yaml(text: str) -> tuple[Any, _Lines]:
    loader = yaml.SafeLoader(text)
    lines = _Lines()
    try:
        node = loader.get_single_node()
        if node is None:
            return None, lines
        # Walk before constructing: construction folds `<<:` merges into the nodes, which
        # would make merged keys look like duplicates written on the anchor's lines.
        lines.walk(node, ())
        return loader.construct_document(node), lines
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.YAMLError, text: str) -> WatchlistProblem:
    """The YAML parser's complaint in plain words, on the line where the mistake is.

    The parser speaks of tokens (``expected <block end>, but found '<block mapping start>'``)
    and often points past the mistake (an unclosed quote is noticed at the end of the file),
    so the common mistakes are recognised here and named with their own line.
    """
    mark = getattr(exc, "problem_mark", None)
    opened = getattr(exc, "context_mark", None)
    context = getattr(exc, "context", None) or ""
    detail = getattr(exc, "problem", None) or str(exc)
    rows = text.splitlines()
    line = (mark or opened).line + 1 if (mark or opened) is not None else None

    def problem(at: int | None, message: str, fix: str) -> WatchlistProblem:
        return WatchlistProblem(at, "", message, fix)

    if "another document" in detail:
        return problem(
            line,
            "a second document starts here (a `---` line)",
            "keep the whole watchlist in one document: remove the extra `---` line",
        )
    if "'\\t'" in detail and mark is not None:
        return problem(
            line,
            f"there is a tab character on this line (at column {mark.column + 1})",
            "YAML accepts only spaces: replace the tab with spaces, lining the key up with "
            "the keys above it",
        )
    if "quoted scalar" in context and opened is not None:
        quote = _char_at(rows, opened) or '"'
        if "end of stream" in detail or "end of document" in detail:
            return problem(
                opened.line + 1,
                f"the quote {quote} opened on this line is never closed",
                f"end the value with a closing {quote} on the same line",
            )
        return problem(
            line,
            f"this quoted value cannot be read ({detail})",
            "a backslash \\ inside double quotes starts an escape: use single quotes "
            "around text with backslashes",
        )
    if context.startswith("while parsing a flow") and opened is not None:
        bracket = _char_at(rows, opened) or "["
        closing = {"[": "]", "{": "}"}.get(bracket, "]")
        return problem(
            opened.line + 1,
            f"the `{bracket}` opened on this line is not closed with `{closing}`",
            f"close it with `{closing}` on the same line, a comma between items, e.g. "
            + ("tags: [ivory, cambodia]" if closing == "]" else "{name: a, platform: telegram}"),
        )
    if "simple key" in context and opened is not None and opened.line < len(rows):
        row = rows[opened.line].strip()
        if re.match(r"^(- )*[\w.-]+:\S", row):
            key, value = row.removeprefix("- ").split(":", 1)
            return problem(
                opened.line + 1,
                "there is no space after the colon",
                f"write `{key}: {value}` (a space after the `:`)",
            )
        return problem(
            opened.line + 1,
            "this line has no `key: value` colon",
            "write it as `key: value`, or make it part of the line above by lining it up",
        )
    if "expected <block end>" in detail and mark is not None:
        if "<scalar>" in detail and _after_closing_quote(rows, mark):
            quote = rows[mark.line][: mark.column].rstrip()[-1]
            unclosed = _unclosed_quote_line(rows, mark.line, quote)
            if unclosed is not None:
                return problem(
                    unclosed + 1,
                    f"the quote {quote} opened on this line is never closed",
                    f"end the value with a closing {quote} on the same line",
                )
            return problem(
                line,
                "there is more text after the closing quote",
                'put the whole value inside the quotes, e.g. name: "a b c"',
            )
        return _indentation_problem(rows, mark.line, YAML_FIX)
    if "mapping values are not allowed" in detail and mark is not None:
        if _indented_past_the_line_above(rows, mark.line):
            return _indentation_problem(rows, mark.line, YAML_FIX)
        return problem(
            line,
            "this line has a second `: ` after the key's own",
            'put the value in double quotes, e.g. text: "price: 20 USD"',
        )
    if "expected '<document start>'" in detail and mark is not None:
        return _indentation_problem(rows, mark.line, YAML_FIX)
    # `*`, `&`, `!`, `|`, `>` start YAML's own constructs (aliases, anchors, tags, blocks).
    special = ("an anchor", "an alias", "a tag", "a block scalar")
    if any(f"while scanning {what}" in context for what in special) and opened is not None:
        mark, line = opened, opened.line + 1
        detail = "cannot start any token"
    if "cannot start any token" in detail:
        shown = _char_at(rows, mark) if mark is not None else None
        return problem(
            line,
            f"a value cannot start with `{shown}`"
            if shown
            else f"this is not valid YAML: {detail}",
            'put the value in double quotes, e.g. id: "@data-id"',
        )
    return problem(line, f"this is not valid YAML: {detail}", YAML_FIX)


def _char_at(rows: list[str], mark: Any) -> str | None:
    if mark is None or not 0 <= mark.line < len(rows) or mark.column >= len(rows[mark.line]):
        return None
    return rows[mark.line][mark.column]


def _indent(row: str) -> int:
    return len(row) - len(row.lstrip(" "))


def _key_column(row: str) -> int:
    """Where the key of a line starts: after its indentation and any `- ` item marks."""
    column = _indent(row)
    while row[column:].startswith("- "):
        column += 2 + _indent(row[column + 2 :])
    return column


def _content_rows_before(rows: list[str], index: int) -> list[tuple[int, str]]:
    """(0-based line, text) of the lines above ``index`` that hold YAML (not blank or comment)."""
    return [
        (i, rows[i])
        for i in range(min(index, len(rows)) - 1, -1, -1)
        if rows[i].strip() and not rows[i].lstrip().startswith("#")
    ]


def _indented_past_the_line_above(rows: list[str], index: int) -> bool:
    above = _content_rows_before(rows, index)
    return bool(above) and index < len(rows) and _indent(rows[index]) > _key_column(above[0][1])


def _unclosed_quote_line(rows: list[str], index: int, quote: str) -> int | None:
    """The nearest line above ``index`` with an odd number of ``quote``: an unclosed one.

    A quote left open swallows the lines after it up to the next quote, so the parser only
    complains lines later, where that next quote "closes" it.
    """
    for i, row in _content_rows_before(rows, index):
        if row.count(quote) % 2:
            return i
    return None


def _after_closing_quote(rows: list[str], mark: Any) -> bool:
    before = rows[mark.line][: mark.column].rstrip() if mark.line < len(rows) else ""
    return before.endswith(('"', "'"))


def _indentation_problem(rows: list[str], index: int, fallback_fix: str) -> WatchlistProblem:
    """A line whose indentation does not fit, with the line it most likely belongs with."""
    if index >= len(rows):
        return WatchlistProblem(index + 1, "", "the indentation is wrong here", fallback_fix)
    row = rows[index]
    above = _content_rows_before(rows, index)
    if above and re.match(r"^-[^\s-]", above[0][1].lstrip(" ")):
        # `-name: a` is a key called "-name", so the next line seems mis-indented.
        shown = above[0][1].strip()
        return WatchlistProblem(
            above[0][0] + 1,
            "",
            "a list item needs a space after the `-`",
            f"write `- {shown[1:]}`",
        )
    is_item = row.lstrip(" ").startswith("- ")
    here = _indent(row)
    # Columns where keys (or `- ` items) already start above: the line belongs at one of them.
    columns: dict[int, int] = {}
    for i, text in above:
        column = _indent(text) if is_item else _key_column(text)
        if is_item and not text.lstrip(" ").startswith("- "):
            continue
        columns.setdefault(column, i)
    what = "`- ` item" if is_item else "key"
    message = (
        f"wrong indentation: this line starts after {_spaces(here)}, where no {what} above starts"
    )
    if not columns:
        return WatchlistProblem(index + 1, "", message, fallback_fix)
    # Nearest column; on a tie the deeper one, which belongs to the nearer block.
    column = min(columns, key=lambda c: (abs(c - here), -c))
    model = rows[columns[column]]
    shown = "the `- ` item" if is_item else f"`{model[column:].split(':')[0].strip()[:30]}`"
    return WatchlistProblem(
        index + 1,
        "",
        message,
        f"line it up with {shown} on line {columns[column] + 1}: start it after "
        f"{_spaces(column)} (spaces, not tabs)",
    )


def _spaces(count: int) -> str:
    return "no spaces" if count == 0 else f"{count} space{'s' if count != 1 else ''}"


# -- warnings: allowed, but probably not what was meant ----------------------------------
_TELEGRAM_HOSTS = frozenset({"t.me", "www.t.me", "telegram.me", "www.telegram.me"})
_TELEGRAM_USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
# First parts of t.me addresses that are not a public channel's name: the preview itself
# (/s/), private chats and invite links (/+CODE, /joinchat/CODE, /c/ID) and Telegram's own
# link kinds. None of them has a /s/ preview.
_TELEGRAM_NOT_A_NAME = frozenset(
    {
        "s", "c", "joinchat", "addstickers", "addemoji", "addlist", "addtheme", "bg", "boost",
        "confirmphone", "contact", "invoice", "iv", "login", "m", "proxy", "setlanguage",
        "share", "socks",
    }
)  # fmt: skip


def telegram_preview_url(url: str) -> str | None:
    """``https://t.me/s/<name>`` for a public channel's plain address (t.me/<name>), else None.

    Only the /s/ preview can be read without logging in; the plain page shows a "View in
    Telegram" card with no posts. Private groups and invite links have no preview at all.
    """
    parts = urlsplit(url)
    if (parts.hostname or "").lower() not in _TELEGRAM_HOSTS:
        return None
    segments = [s for s in parts.path.split("/") if s]
    if not 1 <= len(segments) <= 2:
        return None
    name = segments[0]
    if name.lower() in _TELEGRAM_NOT_A_NAME or not _TELEGRAM_USERNAME.match(name):
        return None
    if len(segments) == 2 and not segments[1].isdigit():  # t.me/<name>/<post number>
        return None
    return f"https://t.me/s/{name}"


def _private_chat(url: str) -> bool:
    """An invite link or a private chat's /c/ address: no preview, an account only."""
    parts = urlsplit(url)
    if (parts.hostname or "").lower() not in _TELEGRAM_HOSTS:
        return False
    first = next((s for s in parts.path.split("/") if s), "")
    return first.startswith("+") or first in ("joinchat", "c")


def _warnings(watchlist: Watchlist, data: dict[str, Any], lines: _Lines) -> list[WatchlistProblem]:
    warnings = []
    for index, target in enumerate(watchlist.targets):
        loc: Loc = ("targets", index)
        # With a session a Telegram target is read through the account: any chat link works.
        through_account = target.platform == "telegram" and target.session
        preview = None if through_account else telegram_preview_url(target.url)
        if target.platform == "telegram" and not target.session and _private_chat(target.url):
            warnings.append(
                WatchlistProblem(
                    lines.line((*loc, "url")),
                    _where((*loc, "session"), data),
                    f"`{target.url}` is a group or private channel: it has no public preview "
                    "and can only be read through a Telegram account",
                    "log an account in with `watcher session telegram tg-reader-1`, then add "
                    "`session: tg-reader-1` to this target (README: Telegram groups)",
                )
            )
        if preview is not None:
            warnings.append(
                WatchlistProblem(
                    lines.line((*loc, "url")),
                    _where((*loc, "url"), data),
                    f"`{target.url}` is the channel's app page, which shows no posts without "
                    "logging in",
                    f"use its public preview: url: {preview}",
                )
            )
        if target.platform == "facebook" and not target.session:
            warnings.append(
                WatchlistProblem(
                    lines.line((*loc, "platform")),
                    _where((*loc, "session"), data),
                    "a facebook target needs a logged-in session; without one Facebook shows "
                    "a login wall and every capture is recorded as blocked",
                    "create one with `watcher session login fb-puppet-1 --url "
                    "https://www.facebook.com/` (or `watcher session import fb-puppet-1 "
                    "cookies.json`), then add `session: fb-puppet-1` to this target",
                )
            )
    return warnings


# -- problems pydantic cannot see ----------------------------------------------------------
def _shape_problems(data: Any, lines: _Lines) -> list[WatchlistProblem]:
    """Problems that stop the rest of the check: an empty file or one that is not a mapping."""
    if data is None:
        return [WatchlistProblem(None, "", "the file is empty", _TARGETS_FIX)]
    if not isinstance(data, dict):
        return [
            WatchlistProblem(
                lines.line(()),
                "",
                "the file should be made of `key: value` lines",
                "start the file with `targets:` (and optionally operator:, defaults:, alerts:) "
                "at the very left, with no `- ` in front",
            )
        ]
    return []


def _cross_target_problems(data: dict[str, Any], lines: _Lines) -> list[WatchlistProblem]:
    problems = [_unknown_key_problem((k,), data, lines) for k in _INTERNAL_KEYS if k in data]
    problems += [
        WatchlistProblem(
            line,
            _where(path, data),
            f"`{path[-1]}` is written twice in this block (first on line {first})",
            "remove one of them; only the last one would count",
        )
        for path, first, line in lines.duplicates
    ]
    targets = data.get("targets")
    if isinstance(targets, list):
        problems += _duplicate_names(targets, lines)
        for index, target in enumerate(targets):
            if isinstance(target, dict):
                problems += _missing_selectors(target, ("targets", index), data, lines)
    return problems


def _duplicate_names(targets: list[Any], lines: _Lines) -> list[WatchlistProblem]:
    first: dict[str, int | None] = {}
    problems = []
    for index, target in enumerate(targets):
        name = target.get("name") if isinstance(target, dict) else None
        if not isinstance(name, str):
            continue
        line = lines.line(("targets", index, "name"))
        if name in first:
            problems.append(
                WatchlistProblem(
                    line,
                    f"target {name}",
                    f"the name `{name}` is already used by the target on line {first[name]}",
                    "give each target its own name (names are used for evidence file names)",
                )
            )
        else:
            first[name] = line
    return problems


def _missing_selectors(
    target: dict[str, Any], loc: Loc, data: dict[str, Any], lines: _Lines
) -> list[WatchlistProblem]:
    platform = target.get("platform")
    if not isinstance(platform, str) or platform not in known_platforms():
        return []
    given = target.get("selectors")
    given = given if isinstance(given, dict) else {}
    where_loc = (*loc, "selectors") if "selectors" in target else (*loc, "platform")
    return [
        WatchlistProblem(
            lines.line(where_loc),
            _where(where_loc, data),
            f"selector missing: platform {platform} needs the `{name}` selector",
            f"add under `selectors:` a line like "
            f'{name}: "{_SELECTOR_EXAMPLES.get(name, ".css-class")}" that matches the page',
        )
        for name in adapter_for(platform).required_selectors
        if name not in given
    ]


# -- pydantic errors in plain words --------------------------------------------------------
def _pydantic_problem(error: ErrorDetails, data: dict[str, Any], lines: _Lines) -> WatchlistProblem:
    loc = tuple(p for p in error["loc"] if p != "[key]")
    if error["type"] == "invalid_key":  # a key YAML read as a number, such as `1:`
        message, fix = _unknown_key(loc)
        return WatchlistProblem(lines.line(loc), _where(loc[:-1], data), message, fix)
    message, fix = _explain(error, loc)
    return WatchlistProblem(lines.line(loc), _where(loc, data), message, fix)


def _explain(error: ErrorDetails, loc: Loc) -> tuple[str, str]:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "watchlist":
        return ctx["message"], ctx["fix"]
    if kind == "extra_forbidden":
        return _unknown_key(loc)
    if kind == "missing":
        return f"`{loc[-1]}` is missing", _missing_fix(str(loc[-1]))
    if kind == "literal_error":
        return f"{_shown(error)} is not allowed here", f"write one of: {ctx.get('expected')}"
    for kinds, (what, fix) in _TYPE_WORDS.items():
        if kind in kinds:
            return f"this should be {what}, not {_shown(error)}", fix
    return error["msg"], "compare this line with the example watchlist"


def _shown(error: ErrorDetails) -> str:
    value = error.get("input")
    if value is None:
        return "empty"
    if isinstance(value, dict):
        return "a block of `key: value` lines"
    if isinstance(value, list):
        return "a list"
    text = str(value)
    return f"`{text[:60]}…`" if len(text) > 60 else f"`{text}`"


_LIST_FIX = "write one item per line starting with `- `, or all on one line like [a, b]"
_TEXT_FIX = 'write text; put it in "double quotes" if it looks like a number, a date or yes/no'
_TYPE_WORDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("string_type",): ("text", _TEXT_FIX),
    ("int_type", "int_parsing", "int_from_float"): (
        "a whole number",
        "write a whole number such as 3, without quotes, units or decimals",
    ),
    ("float_type", "float_parsing"): ("a number", "write a number such as 2.5"),
    ("bool_type", "bool_parsing"): ("yes or no", "write yes or no"),
    ("list_type", "tuple_type", "set_type"): ("a list", _LIST_FIX),
    ("dict_type", "model_type", "model_attributes_type"): (
        "a block of `key: value` lines",
        "put each `key: value` on its own line below, indented by two more spaces",
    ),
}
_MISSING_FIX = {
    "targets": _TARGETS_FIX,
    "name": "add a line `name: short-name` (letters, digits, `_`, `.`, `-`)",
    "url": "add a line `url: https://...` with the page address",
    "chat_ids": "add a line `chat_ids: [-1001234567890]` with the team chat's id",
}


def _missing_fix(key: str) -> str:
    if key == "platform":  # adapters may register after import, so ask each time
        return f"add a line `platform: NAME`, where NAME is one of: {', '.join(known_platforms())}"
    return _MISSING_FIX.get(key, f"add a line `{key}: ...` here")


def _unknown_key(loc: Loc) -> tuple[str, str]:
    allowed = _allowed_keys(loc[:-1])
    what = "alert sink" if loc[:-1] == ("alerts",) else "key"
    return f"unknown {what} `{loc[-1]}`", _choose_fix(str(loc[-1]), allowed)


def _unknown_key_problem(loc: Loc, data: dict[str, Any], lines: _Lines) -> WatchlistProblem:
    message, fix = _unknown_key(loc)
    return WatchlistProblem(lines.line(loc), _where(loc, data), message, fix)


def _allowed_keys(loc: Loc) -> list[str]:
    model = _model_at(loc)
    if model is None:
        return []
    return [k for k in model.model_fields if not (model is Watchlist and k in _INTERNAL_KEYS)]


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The model that validates the mapping at ``loc``, found by following field types."""
    kind: Any = Watchlist
    for part in loc:
        kind = _unwrap(kind)
        kind = _alerts_model() if kind is Alerts else kind
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            field = kind.model_fields.get(str(part))
            kind = field.annotation if field else None
        else:  # a list or dict: step to its item type
            args = get_args(kind)
            kind = args[-1] if args else None
    kind = _unwrap(kind)
    kind = _alerts_model() if kind is Alerts else kind
    return kind if isinstance(kind, type) and issubclass(kind, BaseModel) else None


def _unwrap(kind: Any) -> Any:
    if get_origin(kind) is Annotated:
        kind = get_args(kind)[0]
    if get_origin(kind) in (Union, types.UnionType):
        kind = next(a for a in get_args(kind) if a is not type(None))
    return kind


def _where(loc: Loc, data: dict[str, Any]) -> str:
    """Plain description of a place: ``target ivory-1: selectors.post`` or ``defaults.every``."""
    if len(loc) >= 2 and loc[0] == "targets" and isinstance(loc[1], int):
        targets = data.get("targets")
        target = targets[loc[1]] if isinstance(targets, list) else None
        name = target.get("name") if isinstance(target, dict) else None
        head = f"target {name}" if isinstance(name, str) else f"target {loc[1] + 1}"
        tail = _dotted(loc[2:])
        return f"{head}: {tail}" if tail else head
    return _dotted(loc)


def _dotted(loc: Loc) -> str:
    # List positions are counted from 1 for people: `admins item 2`, not `admins.1`.
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f" item {part + 1}"
        else:
            text += f".{part}" if text else str(part)
    return text
