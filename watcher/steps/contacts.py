"""Findings: the phones, handles and links in new and edited posts, recorded; a contact
another target gave first links the two accounts."""

from __future__ import annotations

import logging

from watcher.app import App
from watcher.detect import events as ev
from watcher.detect.contacts import Contact, extract_contacts
from watcher.detect.diff import PostDiff
from watcher.models import Event
from watcher.steps.keywords import DETECT_CHARS, DETECT_MATCHES
from watcher.store.links import contact_seen_before, record_contacts
from watcher.store.photo_text import read_text

log = logging.getLogger(__name__)


def find_contacts(
    app: App,
    target: str,
    diff: PostDiff,
    rows: dict[str, tuple[int, int]],
    capture_id: int,
    now: str,
) -> list[Event]:
    """Record the phones, handles and links of new and edited posts; a contact already seen
    on another target links the two accounts (also on a baseline: that is when a new
    front man is most useful to know about)."""
    events = []
    for captured in [*diff.new, *(e.after for e in diff.edited)]:
        post = captured.post
        text = post.text[:DETECT_CHARS]  # as for keywords (see DETECT_CHARS)
        found = extract_contacts("\n".join([text, *post.links[:DETECT_MATCHES]]))[:DETECT_MATCHES]
        sources: list[tuple[list[Contact], str | None]] = [(found, None)]
        # A photo already read (a repost: photos are read once) gives its contacts now; a
        # new photo gives them when the reader gets to it (steps.photo_text).
        for sha in dict.fromkeys(s for s in captured.image_shas if s):
            if read := read_text(app.store, sha):
                sources.append((extract_contacts(read[:DETECT_CHARS])[:DETECT_MATCHES], sha))
        for contacts, image in sources:
            if not contacts:
                continue
            seen = contact_seen_before(app.store, target, contacts)
            if seen:
                log.info(
                    "%s: post %s gives %d contact(s) seen elsewhere",
                    target,
                    post.post_id,
                    len(seen),
                )
            record_contacts(
                app.store,
                target,
                post.post_id,
                rows[post.post_id][1],
                capture_id,
                contacts,
                now,
                image_sha256=image,
            )
            events += ev.contact_events(target, post.post_id, seen)
    return events
