"""Findings: new photos that match the team's reference photos (``images.known``)."""

from __future__ import annotations

import logging

from watcher.app import App
from watcher.detect import events as ev
from watcher.detect.known import known_match_details, match_known
from watcher.models import Event

log = logging.getLogger(__name__)


def find_known_photos(app: App, target: str, added: list[ev.NewImage]) -> list[Event]:
    """A ``known_image`` event for each new photo near one of the reference photos."""
    events = []
    for new in added:
        assert new.image.phash is not None and new.image.sha256 is not None
        matches = match_known(new.image.phash, app.known)
        if matches:
            match = known_match_details(new.image.sha256, matches)
            post_id = new.post.post.post_id
            log.info("%s: a photo of post %s matches %s", target, post_id, match.reference)
            events.append(ev.known_image_event(target, new, match))
    return events
