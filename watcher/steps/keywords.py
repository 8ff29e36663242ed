"""Findings: the lexicon's keywords in new posts and in what edits added."""

from __future__ import annotations

import logging

from watcher.detect.diff import PostDiff
from watcher.detect.keywords import KeywordMatch, KeywordMatcher
from watcher.models import Post

log = logging.getLogger(__name__)


# Detection (keywords, contacts) reads this much of each post and keeps this many matches.
# Posts are stored and searchable whole; a real listing is a few thousand characters at most
# (Telegram allows 4,096), while a hostile page of 50 MB of "posts" held the event loop for
# minutes. A post cut here says so in the log.
DETECT_CHARS = 20_000


DETECT_MATCHES = 100


def keyword_hits(matcher: KeywordMatcher, diff: PostDiff) -> dict[str, list[KeywordMatch]]:
    """Keyword matches of new posts, and the matches an edit added, by post id."""
    hits: dict[str, list[KeywordMatch]] = {}
    new_texts = [detected_part(captured.post) for captured in diff.new]
    for captured, found in zip(diff.new, matcher.find_many(new_texts), strict=True):
        if found:
            hits[captured.post.post_id] = found[:DETECT_MATCHES]
    for edit in diff.edited:
        if not edit.text_changed:
            continue
        before = {(m.group, m.term) for m in matcher.find(edit.before.text[:DETECT_CHARS])}
        after = matcher.find(detected_part(edit.after.post))
        if added := [m for m in after if (m.group, m.term) not in before]:
            hits[edit.after.post.post_id] = added[:DETECT_MATCHES]
    return hits


def detected_part(post: Post) -> str:
    """The start of the post's text that detection reads (see :data:`DETECT_CHARS`)."""
    if len(post.text) > DETECT_CHARS:
        log.info(
            "post %s has %d characters: keywords and contacts are read in the first %d",
            post.post_id,
            len(post.text),
            DETECT_CHARS,
        )
    return post.text[:DETECT_CHARS]
