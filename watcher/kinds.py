"""Every event kind: what it carries, its JSON form, and how it reads to a person.

Each kind is one frozen dataclass here (:class:`NewPost`, :class:`Edited`, :class:`Deleted`,
...), registered under its ``kind``. An :class:`~watcher.models.Event` carries one as its
``payload``; the store keeps :meth:`Payload.to_json` in ``events.details`` as before, and
:meth:`Payload.from_json` reads any stored row back (keys an older row lacks take their
defaults, keys not known here are kept as they were). The console, the Telegram renderer and
the bot read these types, never keys: a new kind is one class here, with its test.

Pure: no database, no network.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Self

from watcher.alert import markup as m
from watcher.alert.textdiff import changed, word_diff
from watcher.timeutil import human_time

if TYPE_CHECKING:
    from watcher.models import Event


class EventKind(StrEnum):
    """What a diff or a capture found. Alerts and ``check --json`` use these names."""

    NEW_POST = "new_post"
    EDITED_POST = "edited_post"
    DELETED_POST = "deleted_post"
    IMAGE_SEEN_BEFORE = "image_seen_before"
    CAPTURE_FAILED = "capture_failed"
    CAPTURE_RECOVERED = "capture_recovered"
    RESTORED_POST = "restored_post"
    KEYWORD = "keyword"
    CONTACT_SEEN_BEFORE = "contact_seen_before"
    KNOWN_IMAGE = "known_image"
    WATCHLIST_INVALID = "watchlist_invalid"
    DEALER_RETURNED = "dealer_returned"


LAYOUT_CHANGED = "layout_changed"  # the reason of a capture whose recipe started to miss


# -- the JSON form ---------------------------------------------------------------------------
def _many(decode: Callable[[Any], Any]) -> Callable[[Any], tuple[Any, ...]]:
    return lambda raw: tuple(decode(item) for item in raw or ())


def _plain(value: Any) -> Any:
    """``value`` as JSON: records as objects, tuples as lists, enums as their names."""
    if isinstance(value, _Record):
        return value.to_json()
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, StrEnum):
        return str(value)
    return value


def _optional(**metadata: Any) -> Any:
    """A field left out of the JSON while empty (as the keyword fields of a post's event)."""
    return field(default=(), metadata={"omit_empty": True, **metadata})


@dataclass(frozen=True, slots=True, kw_only=True)
class _Record:
    """A record with a JSON form: every field by its name, nested records as objects.

    ``extra`` holds the keys of a stored object that this type does not know (written by
    another version), so reading a row back and writing it out again loses nothing.
    """

    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored in ``events.details`` (and printed by ``check --json``)."""
        data = dict(self.extra)
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "extra" or (f.metadata.get("omit_empty") and not value):
                continue
            data[f.metadata.get("key", f.name)] = _plain(value)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """The record of a stored JSON object; what it lacks takes the field's default."""
        known = {f.metadata.get("key", f.name): f for f in fields(cls) if f.name != "extra"}
        values = {}
        for key, f in known.items():
            if key in data:
                raw, decode = data[key], f.metadata.get("decode")
                if decode is None and isinstance(raw, list):
                    decode = tuple
                values[f.name] = decode(raw) if decode else raw
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(**values, extra=extra)


@dataclass(frozen=True, slots=True, kw_only=True)
class KeywordHit(_Record):
    """A lexicon term found in a post: ``text`` is the post's ``text[start:end]``."""

    group: str = ""
    term: str = ""
    start: int = 0
    end: int = 0
    text: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Sighting(_Record):
    """Where something was seen first: the target, its post, when, in which capture."""

    target: str | None = None
    post_id: str | None = None
    seen_at: str | None = None
    capture_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PhotoSighting(Sighting):
    """Where a photo was seen first: also the post's address and that photo's SHA-256."""

    permalink: str | None = None
    image_sha256: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Reference(_Record):
    """One of the team's reference photos that a captured photo matched."""

    name: str = ""
    sha256: str = ""
    distance: int = 0


# -- the kinds --------------------------------------------------------------------------------
PAYLOADS: dict[EventKind, type[Payload]] = {}


@dataclass(frozen=True, slots=True, kw_only=True)
class Payload(_Record):
    """What an event of one kind carries, and how it reads. Subclasses set the class values:

    ``kind`` registers the class; ``title`` heads its Telegram alert, ``label`` its console
    line; ``found`` is (one, many) in ``watcher run``'s line per capture (None: not counted);
    ``always`` reaches the team whatever a target's ``alert_on`` says; ``by_default`` is in
    ``alerts.telegram.kinds`` unless the watchlist lists them; ``shows_page`` attaches the
    page's screenshot when there is no photo; ``actionable`` puts buttons under the alert.
    """

    kind: ClassVar[EventKind]
    title: ClassVar[str]
    label: ClassVar[str]
    found: ClassVar[tuple[str, str] | None] = None
    always: ClassVar[bool] = False
    by_default: ClassVar[bool] = True
    shows_page: ClassVar[bool] = False
    actionable: ClassVar[bool] = True
    links_accounts: ClassVar[bool] = False  # ties two accounts: its alert offers "Dealer"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # No super() here: a slots dataclass is a copy of the class its body defined. Both
        # pass through here; the copy, registered last, is the class in use.
        kind = cls.__dict__.get("kind")
        if kind is not None:
            PAYLOADS[kind] = cls

    def photos(self) -> tuple[str, ...]:
        """The stored photos (SHA-256) an alert about it would attach."""
        return ()

    def excerpt(self) -> str:
        """Its words in a digest line (a post's text, a failure's message)."""
        return ""

    def link(self) -> str | None:
        """The post's address, when it has one."""
        return None

    def hits(self) -> tuple[KeywordHit, ...]:
        """The keyword matches that say why it matters."""
        return ()

    def telegram(self, event: Event, excerpt: int, now: datetime | None) -> list[str]:
        """The lines of its Telegram alert under the title (HTML)."""
        raise NotImplementedError

    def console(self, event: Event, now: datetime | None) -> str:
        """Its line under the label on the console."""
        raise NotImplementedError


def payload_from_json(kind: EventKind | str, data: Mapping[str, Any]) -> Payload:
    """The payload of a stored event of ``kind`` (ValueError for a kind not known here)."""
    return PAYLOADS[EventKind(kind)].from_json(data)


def default_kinds() -> list[str]:
    """The kinds sent to Telegram when the watchlist lists none."""
    return [str(kind) for kind, payload in PAYLOADS.items() if payload.by_default]


def always_sent() -> frozenset[EventKind]:
    """The kinds that reach the team whatever a target's ``alert_on`` says."""
    return frozenset(kind for kind, payload in PAYLOADS.items() if payload.always)


# -- posts ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class _Post(Payload):
    """A post's words, photos and address, and the keywords that flagged it (if any)."""

    shows_page: ClassVar[bool] = True

    text: str = ""
    permalink: str | None = None
    posted_at: str | None = None
    image_shas: tuple[str, ...] = ()
    keywords: tuple[KeywordHit, ...] = _optional(decode=_many(KeywordHit.from_json))
    groups: tuple[str, ...] = _optional()

    def photos(self) -> tuple[str, ...]:
        return self.image_shas

    def excerpt(self) -> str:
        return self.text

    def link(self) -> str | None:
        return self.permalink

    def hits(self) -> tuple[KeywordHit, ...]:
        return self.keywords

    def telegram(self, event: Event, excerpt: int, now: datetime | None) -> list[str]:
        lines = []
        change = self._change_lines()
        if change and change[0].startswith("<b>Edited:"):
            lines += change  # the change is the news: the whole new text would bury it
        else:
            text = m.highlighted(self.text, self.keywords, excerpt)
            lines += [text or "<i>(no text)</i>", *change]
        if self.keywords:
            lines.append(f"<b>Why:</b> {m.why(self.keywords)}")
        if self.posted_at:
            lines.append(f"Posted: {m.when(self.posted_at, now)}")
        return lines + self._history_lines(event, now) + m.post_link(self.permalink)

    def console(self, event: Event, now: datetime | None) -> str:
        return m.flat(self.text)

    def _change_lines(self) -> list[str]:
        return []

    def _history_lines(self, event: Event, now: datetime | None) -> list[str]:
        return []


@dataclass(frozen=True, slots=True, kw_only=True)
class _Captured(_Post):
    """A post as this capture saw it: also its author and the links it gives."""

    author: str | None = None
    links: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class NewPost(_Captured):
    """A post not seen before on the target."""

    kind = EventKind.NEW_POST
    title = "🆕 New post"
    label = "NEW POST"
    found = ("new post", "new posts")


@dataclass(frozen=True, slots=True, kw_only=True)
class Edited(_Captured):
    """A post's text or photos changed: its new version, and what it was."""

    kind = EventKind.EDITED_POST
    title = "✏️ Post edited"
    label = "EDITED"
    found = ("edited post", "edited posts")

    previous_text: str = ""
    text_changed: bool = False
    images_added: tuple[str, ...] = ()
    images_removed: tuple[str, ...] = ()
    version: int = 0

    def _change_lines(self) -> list[str]:
        """Removed words struck, added words underlined, with a little context."""
        lines = []
        if self.text_changed:
            segments = word_diff(self.previous_text, self.text)
            if changed(segments):
                marks = {"del": ("<s>", "</s>"), "ins": ("<u>", "</u>")}
                shown = [
                    f"{marks[s.op][0]}{m.e(s.text)}{marks[s.op][1]}"
                    if s.op in marks
                    else m.e(s.text)
                    for s in segments
                ]
                lines.append("<b>Edited:</b> " + " ".join(shown))
        added, removed = len(self.images_added), len(self.images_removed)
        if added or removed:
            lines.append(f"<b>Photos:</b> {added} added, {removed} removed")
        return lines

    def console(self, event: Event, now: datetime | None) -> str:
        # Word-level, marked the way `git diff --word-diff` does: [-removed-]{+added+}.
        segments = word_diff(self.previous_text, self.text)
        if not self.text_changed or not changed(segments):
            added, removed = len(self.images_added), len(self.images_removed)
            return f"photos: {added} added, {removed} removed; text: {m.flat(self.text)}"
        marks = {"del": "[-{}-]", "ins": "{{+{}+}}"}
        shown = " ".join(marks[s.op].format(s.text) if s.op in marks else s.text for s in segments)
        return "edited: " + m.flat(shown, 400)


@dataclass(frozen=True, slots=True, kw_only=True)
class Deleted(_Post):
    """A post gone while older and newer ones are still there: its last stored copy."""

    kind = EventKind.DELETED_POST
    title = "🗑 Post deleted"
    label = "DELETED"
    found = ("deleted post", "deleted posts")

    first_seen_at: str | None = None
    last_seen_at: str | None = None
    last_capture_id: int | None = None

    def _history_lines(self, event: Event, now: datetime | None) -> list[str]:
        return [
            f"First seen {m.when(self.first_seen_at, now)}, last seen "
            f"{m.when(self.last_seen_at, now)}. Attached: the last stored copy."
        ]

    def console(self, event: Event, now: datetime | None) -> str:
        return f"last seen {human_time(self.last_seen_at, now)}: {m.flat(self.text)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Restored(_Captured):
    """A post found deleted is back: hidden between its last sighting and this capture."""

    kind = EventKind.RESTORED_POST
    title = "↩️ Deleted post is back"
    label = "BACK AFTER DELETION"

    last_seen_at: str | None = None
    deleted_at: str | None = None
    deleted_capture_id: int | None = None
    first_seen_at: str | None = None
    changed_while_hidden: bool = False

    def _history_lines(self, event: Event, now: datetime | None) -> list[str]:
        changed_note = " Its text or photos changed while hidden (see the edit alert)."
        return [
            f"Hidden from {m.when(self.last_seen_at, now)} (last seen) to "
            f"{m.when(event.created_at, now)}; found deleted {m.when(self.deleted_at, now)}."
            + (changed_note if self.changed_while_hidden else "")
        ]

    def console(self, event: Event, now: datetime | None) -> str:
        return (
            f"hidden from {human_time(self.last_seen_at, now)} (last seen) to "
            f"{human_time(event.created_at, now)}, found deleted "
            f"{human_time(self.deleted_at, now)}: {m.flat(self.text)}"
        )


# -- photos and contacts seen elsewhere -------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class ImageSeenBefore(Payload):
    """A photo already archived from another post or account (a repost)."""

    kind = EventKind.IMAGE_SEEN_BEFORE
    links_accounts = True
    title = "🔁 Photo seen before"
    label = "PHOTO SEEN BEFORE"
    found = ("photo seen before", "photos seen before")

    image_sha256: str | None = None
    image_url: str | None = None
    distance: int = 0
    same_target: bool = False
    first_seen: PhotoSighting = field(
        default_factory=PhotoSighting, metadata={"decode": PhotoSighting.from_json}
    )
    matches: int = 1

    def photos(self) -> tuple[str, ...]:
        return tuple(s for s in (self.image_sha256, self.first_seen.image_sha256) if s)

    def telegram(self, event: Event, excerpt: int, now: datetime | None) -> list[str]:
        first = self.first_seen
        post = m.e(first.post_id or "?")
        post = f'<a href="{m.e(first.permalink)}">{post}</a>' if first.permalink else post
        return [
            f"Post {m.e(event.post_id or '?')} shows a photo first seen on "
            f"<b>{m.e(first.target or '?')}</b> post {post}"
            f" on {m.when(first.seen_at, now)} (distance {self.distance})."
        ]

    def console(self, event: Event, now: datetime | None) -> str:
        first = self.first_seen
        return (
            f"photo first seen on {first.target} post {first.post_id} "
            f"({human_time(first.seen_at, now)}), distance {self.distance}"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class KnownImageMatch(Payload):
    """A captured photo matches one of the team's reference photos (closest first)."""

    kind = EventKind.KNOWN_IMAGE
    title = "🧩 Matches a reference photo"
    label = "KNOWN PHOTO"
    found = ("reference photo match", "reference photo matches")

    image_sha256: str | None = None
    reference: str = ""
    distance: int = 0
    references: tuple[Reference, ...] = field(
        default=(), metadata={"decode": _many(Reference.from_json)}
    )
    image_url: str | None = None
    permalink: str | None = None

    def photos(self) -> tuple[str, ...]:
        return (self.image_sha256,) if self.image_sha256 else ()

    def link(self) -> str | None:
        return self.permalink

    def telegram(self, event: Event, excerpt: int, now: datetime | None) -> list[str]:
        return [
            f"Post {m.e(event.post_id or '?')} shows reference photo "
            f"<b>{m.e(self.reference)}</b> (distance {m.e(self.distance)}).",
            *m.post_link(self.permalink),
        ]

    def console(self, event: Event, now: datetime | None) -> str:
        return f"matches reference photo {self.reference} (distance {self.distance})"


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactSeenBefore(Payload):
    """A phone number or messenger handle already seen on another account."""

    kind = EventKind.CONTACT_SEEN_BEFORE
    links_accounts = True
    title = "☎️ Contact seen on another account"
    label = "CONTACT SEEN BEFORE"
    found = ("contact seen before", "contacts seen before")

    # `kind` is the event's own; the contact's kind (phone, telegram, ...) is `contact`,
    # stored under the key "kind" as before.
    contact: str = field(default="", metadata={"key": "kind"})
    value: str = ""
    raw: str = ""
    first_seen: Sighting = field(default_factory=Sighting, metadata={"decode": Sighting.from_json})
    targets: tuple[str, ...] = ()

    def telegram(self, event: Event, excerpt: int, now: datetime | None) -> list[str]:
        first = self.first_seen
        others = ", ".join(m.e(t) for t in self.targets)
        contact = f"{m.e(self.contact)} <b>{m.e(self.value)}</b>"
        where = f"<b>{m.e(first.target or '?')}</b> post {m.e(first.post_id or '?')}"
        return [
            f"Post {m.e(event.post_id or '?')} gives {contact}, first seen on {where}"
            f" ({m.when(first.seen_at, now)}). Also on: {others}."
        ]

    def console(self, event: Event, now: datetime | None) -> str:
        return f"{self.contact} {self.value} first seen on {self.first_seen.target}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Keyword(_Captured):
    """A new or edited post matched the lexicon (``post_event`` says which of the two)."""

    kind = EventKind.KEYWORD
    title = "🔑 Keyword match"
    label = "KEYWORD"
    found = ("post with keywords", "posts with keywords")

    post_event: EventKind = field(default=EventKind.NEW_POST, metadata={"decode": EventKind})


# -- watcher itself ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class CaptureFailed(Payload):
    """A capture failed: why (``reason``, e.g. ``http_error``, ``store_bug``), in words."""

    kind = EventKind.CAPTURE_FAILED
    always = True

    reason: str = ""
    message: str = ""
    failure_streak: int = 0  # failures in a row, this one included (0: not recorded)

    # A layout change is a failure the team fixes in the watchlist, not at the site.
    @property
    def title(self) -> str:  # type: ignore[override]
        return "🧩 Layout changed" if self.reason == LAYOUT_CHANGED else "⚠️ Capture failing"

    @property
    def label(self) -> str:  # type: ignore[override]
        return "LAYOUT CHANGED" if self.reason == LAYOUT_CHANGED else "CAPTURE FAILED"

    def excerpt(self) -> str:
        return self.message

    def telegram(self, event: Event, excerpt: int, now: datetime | None) -> list[str]:
        return [m.e(self.message)]

    def console(self, event: Event, now: datetime | None) -> str:
        return self.message


@dataclass(frozen=True, slots=True, kw_only=True)
class CaptureRecovered(Payload):
    """A capture succeeded after ``failures`` failed ones."""

    kind = EventKind.CAPTURE_RECOVERED
    title = "✅ Capture recovered"
    label = "RECOVERED"
    always = True

    failures: int = 0

    def telegram(self, event: Event, excerpt: int, now: datetime | None) -> list[str]:
        return [f"Capturing again after {self.failures} failed attempt(s)."]

    def console(self, event: Event, now: datetime | None) -> str:
        return f"capturing again after {self.failures} failure(s)"


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchlistInvalid(Payload):
    """An edit of the watchlist was rejected while ``watcher run`` was going."""

    kind = EventKind.WATCHLIST_INVALID
    title = "⚠️ Watchlist edit rejected"
    label = "WATCHLIST INVALID"
    always = True
    by_default = False  # it goes to every chat whatever their kinds (see alert.routing)
    actionable = False

    message: str = ""

    def excerpt(self) -> str:
        return self.message

    def telegram(self, event: Event, excerpt: int, now: datetime | None) -> list[str]:
        return [m.e(self.message)]

    def console(self, event: Event, now: datetime | None) -> str:
        return self.message


# -- dealers ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class DealerReturned(Payload):
    """An account with no history ties to a dealer whose accounts all went away: the dealer
    may be back under a new name. Sent once per new account."""

    kind = EventKind.DEALER_RETURNED
    links_accounts = True
    title = "🔄 A dealer may be back"
    label = "DEALER BACK?"
    found = ("dealer come back", "dealers come back")
    always = True  # a new account is not yet anyone's target: its alert_on says nothing

    account: str = ""  # the new account (a target, or an author in a watched group)
    dealer: str = ""
    accounts: tuple[str, ...] = ()  # the dealer's accounts that went away
    gone_since: str | None = None  # the latest of their going
    how: str = ""  # blocked, failing, silent (the last account's)
    same: tuple[str, ...] = ()  # the strongest shared keys, e.g. "phone +85512345678"
    photos_seen: int = 0  # photos of the dealer seen again (photos() is what an alert attaches)
    tie_ids: tuple[str, ...] = ()

    def excerpt(self) -> str:
        return self._sentence(None, html=False)

    def telegram(self, event: Event, excerpt: int, now: datetime | None) -> list[str]:
        return [
            self._sentence(now, html=True),
            f"See it with /dealer {m.e(self.dealer)}; if these are not one dealer, reject the "
            "tie there.",
        ]

    def console(self, event: Event, now: datetime | None) -> str:
        return self._sentence(now, html=False)

    def _sentence(self, now: datetime | None, html: bool) -> str:
        esc = m.e if html else str
        bold = (lambda s: f"<b>{m.e(s)}</b>") if html else str
        when = m.when(self.gone_since, now) if html else human_time(self.gone_since, now)
        same = [f"same {esc(s)}" for s in self.same]
        if self.photos_seen:
            n = self.photos_seen
            same.append(f"{n} photo{'s' if n != 1 else ''} seen before")
        return (
            f"{bold(self.account.removeprefix('author:'))} looks like {bold(self.dealer)} "
            f"(accounts {esc(', '.join(a.removeprefix('author:') for a in self.accounts))}, "
            f"{esc(self.how or 'gone')} since {when}): {', '.join(same) or 'tied by evidence'}."
        )
