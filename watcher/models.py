"""Records that cross module boundaries. Plain frozen dataclasses, never raw dicts."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

# EventKind lives with the kinds' payloads; it is imported from here too (a re-export).
from watcher.kinds import EventKind as EventKind
from watcher.kinds import Payload, payload_from_json


@dataclass(frozen=True, slots=True)
class Post:
    """One post as a platform adapter extracted it from a page."""

    post_id: str
    text: str = ""
    permalink: str | None = None
    author: str | None = None
    posted_at: str | None = None  # UTC ISO-8601, or None when the page gives no time
    image_urls: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    video_urls: tuple[str, ...] = ()
    forwarded_from: str | None = None
    views: str | None = None
    edited: bool = False  # the platform itself labels the post as edited
    link_preview: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (lists instead of tuples), as used in golden files and posts.json."""
        data = asdict(self)
        for name in ("image_urls", "links", "video_urls"):
            data[name] = list(data[name])
        return data

    def extra_json(self) -> dict[str, Any]:
        """The platform details beyond text and images (stored with each version)."""
        return {
            k: v
            for k, v in self.to_json().items()
            if k in _EXTRA_FIELDS and v not in (None, False, [], "")
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Post:
        """Inverse of :meth:`to_json`."""
        return cls(
            post_id=str(data["post_id"]),
            text=data.get("text", ""),
            permalink=data.get("permalink"),
            author=data.get("author"),
            posted_at=data.get("posted_at"),
            image_urls=tuple(data.get("image_urls", ())),
            links=tuple(data.get("links", ())),
            video_urls=tuple(data.get("video_urls", ())),
            forwarded_from=data.get("forwarded_from"),
            views=data.get("views"),
            edited=bool(data.get("edited", False)),
            link_preview=data.get("link_preview"),
        )


@dataclass(frozen=True, slots=True)
class PageEvent:
    """Something a page shows that is not a post: a channel's service message ("Channel
    created", "Channel photo updated", a pin). Kept apart so it is never diffed as a post."""

    post_id: str
    kind: str  # "service"
    text: str = ""
    posted_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


_EXTRA_FIELDS = ("video_urls", "forwarded_from", "views", "edited", "link_preview")


class CaptureStatus(StrEnum):
    """Outcome of one capture."""

    OK = "ok"
    FAILED = "failed"
    BLOCKED = "blocked"


class CaptureMode(StrEnum):
    """How a capture looked at its page."""

    FULL = "full"  # every page, screenshot, images, web archive
    CHECK = "check"  # a light look: the first page's HTML and posts, as the last capture saw it


@dataclass(frozen=True, slots=True)
class Event:
    """Something the team may need to know, produced by the diff or the capture pipeline.

    ``payload`` is the kind's own record (:mod:`watcher.kinds`). A JSON object (a stored
    row's ``details``) is accepted in its place and read into that record.
    """

    kind: EventKind
    target: str
    post_id: str | None = None
    payload: Payload = field(default_factory=dict)  # type: ignore[assignment]  # see above
    capture_id: int | None = None
    created_at: str | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.payload, Payload):
            object.__setattr__(self, "payload", payload_from_json(self.kind, self.payload))
        elif self.payload.kind != self.kind:
            raise ValueError(f"a {self.kind} event cannot carry a {self.payload.kind} payload")

    @property
    def details(self) -> dict[str, Any]:
        """The payload's JSON form, as stored in ``events.details``."""
        return self.payload.to_json()

    def to_json(self) -> dict[str, Any]:
        """One JSON object, the form ``watcher check --json`` prints."""
        return {
            "kind": str(self.kind),
            "target": self.target,
            "post_id": self.post_id,
            "capture_id": self.capture_id,
            "created_at": self.created_at,
            "details": self.details,
        }

    def to_json_line(self) -> str:
        """:meth:`to_json` as one line of JSON."""
        return json.dumps(self.to_json(), ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True, slots=True)
class Artifact:
    """A file kept as evidence for a capture; its bytes live in the blob store under ``sha256``."""

    kind: str  # screenshot, html, posts, image, error_screenshot
    sha256: str
    size: int
    media_type: str
    source_url: str | None = None


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """A downloaded post image with its perceptual hashes (None when it could not be decoded)."""

    url: str
    sha256: str | None
    size: int
    media_type: str | None
    phash: int | None = None
    dhash: int | None = None
    width: int | None = None
    height: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ShotLayout:
    """What watcher did to a page's layout for its screenshot (``capture.page``): each post
    box made a whole number of pixels high, and the page drawn lower by less than a pixel,
    so photos fall on the same sub-pixel positions from one capture to the next."""

    drawn_lower_px: float = 0.0
    posts_rounded: int = 0  # post boxes given less than a pixel more height each

    def to_json(self) -> dict[str, object]:
        return {"drawn_lower_px": self.drawn_lower_px, "posts_rounded": self.posts_rounded}


@dataclass(frozen=True, slots=True)
class PageSnapshot:
    """What the browser saw of a target: the raw material of one capture."""

    requested_url: str
    final_url: str
    http_status: int | None
    html_pages: tuple[str, ...]  # rendered HTML of each page read (first page, then older pages)
    screenshot: bytes | None
    user_agent: str
    browser_version: str
    mhtml: bytes | None = None
    responses: tuple[Any, ...] = ()  # watcher.capture.archive.RecordedResponse, for the WARC
    screenshot_layout: ShotLayout = ShotLayout()  # what the screenshot's layout was given


@dataclass(frozen=True, slots=True)
class CaptureSummary:
    """Result of one capture as the CLI and scheduler report it."""

    target: str
    capture_id: int | None
    status: CaptureStatus
    reason: str | None
    started_at: str
    ended_at: str
    post_count: int
    baseline: bool
    events: tuple[Event, ...] = ()
    new_images: int = 0
    mode: CaptureMode = CaptureMode.FULL

    def count(self, kind: EventKind) -> int:
        """How many events of ``kind`` this capture produced."""
        return sum(1 for e in self.events if e.kind == kind)


@dataclass(frozen=True, slots=True)
class CapturedPost:
    """A post from this capture with the SHA-256 of each of its images (None: not downloaded)."""

    post: Post
    image_shas: tuple[str | None, ...]


@dataclass(frozen=True, slots=True)
class StoredPost:
    """The latest stored version of a live post, as the diff needs it."""

    row_id: int
    post_id: str
    version_id: int
    version: int
    text: str
    image_shas: tuple[str | None, ...]
    posted_at: str | None
    permalink: str | None
    first_seen_at: str
    last_seen_at: str
    last_capture_id: int
    position: int  # place in the last capture that saw it, for deletion windows
    deleted_at: str | None = None  # when a capture found it gone (hidden posts only)
    deleted_capture_id: int | None = None


@dataclass(frozen=True, slots=True)
class ImageSighting:
    """Where an archived image was seen: the post that carried it (first sighting)."""

    sha256: str
    target: str
    post_id: str
    permalink: str | None
    seen_at: str
    capture_id: int
    deleted: bool = False  # the post has been deleted since
