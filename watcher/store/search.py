"""Full-text search over every stored post version, as functions over a :class:`Store`.

The index comes from migration ``m005_search``: ``post_versions_fts``, kept in sync with
``post_versions`` by triggers. SQLite errors are translated into
:class:`~watcher.errors.StoreError` by the same ``translated`` wrapper the Store uses (it
needs the store as the first argument).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from watcher.store.db import Store, translated

_WORD = re.compile(r"\w[\w'’.-]*", re.UNICODE)
_TRIGRAM = 3  # the FTS index cannot look up terms shorter than this (trigram tokenizer)


# -- full-text search ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SearchHit:
    """A stored post version whose text matched a search."""

    target: str
    post_id: str
    version: int
    seen_at: str
    text: str
    permalink: str | None
    capture_id: int
    deleted: bool
    edited_since: bool  # the post has a newer version than the one that matched


def search_terms(text: str) -> list[str]:
    """The words of a search, as typed; punctuation and FTS syntax are dropped."""
    return _WORD.findall(text)[:12]


def fts_query(terms: list[str]) -> str:
    """An FTS5 MATCH expression where every term must appear (each quoted: no syntax leaks)."""
    return " AND ".join('"' + term.replace('"', '""') + '"' for term in terms)


@translated
def search_posts(store: Store, text: str, limit: int = 10) -> tuple[list[SearchHit], int]:
    """Post versions matching every word of ``text``, newest first, one per post.

    Returns (the hits up to ``limit``, how many posts matched in all). Terms too short for
    the index (one or two letters, common in Chinese) are matched with LIKE instead.
    """
    terms = search_terms(text)
    if not terms:
        return [], 0
    indexed = [t for t in terms if len(t) >= _TRIGRAM]
    short = [t for t in terms if len(t) < _TRIGRAM]
    # Every word in the post's text, or every word in the text read in one of its photos
    # (m012_photo_text): dealers write the name of the goods and the phone on the photo.
    in_text, text_params = _matching("post_versions_fts", "v.id", "v.text", indexed, short)
    in_photo, photo_params = _matching("photo_text_fts", "pt.rowid", "pt.text", indexed, short)
    where = (
        f"(({in_text}) OR v.id IN (SELECT pi.version_id FROM post_images pi"
        f" JOIN photo_text pt ON pt.sha256 = pi.sha256 WHERE {in_photo}))"
    )
    params = [*text_params, *photo_params]
    # The newest matching version of each post stands for it. The total comes from a window
    # over the groups, so a common word does not build tens of thousands of hits to count them.
    rows = store.db.execute(
        "SELECT p.target, p.post_id, v.version, v.seen_at, v.text, v.permalink, v.capture_id,"
        " p.deleted_at IS NOT NULL, MAX(v.id) AS newest, p.current_version_id,"
        " COUNT(*) OVER () FROM post_versions v"
        f" JOIN posts p ON p.id = v.post_row WHERE {where}"
        " GROUP BY p.id ORDER BY newest DESC LIMIT ?",
        [*params, limit],
    ).fetchall()
    hits = [
        SearchHit(r[0], r[1], r[2], r[3], r[4] or "", r[5], r[6], bool(r[7]), r[8] != r[9])
        for r in rows
    ]
    return hits, rows[0][10] if rows else 0


def _matching(
    fts: str, rowid: str, column: str, indexed: list[str], short: list[str]
) -> tuple[str, list[object]]:
    """A condition that ``column`` (indexed by the FTS table ``fts``) holds every term."""
    where, params = [], []
    if indexed:
        where.append(f"{rowid} IN (SELECT rowid FROM {fts} WHERE {fts} MATCH ?)")
        params.append(fts_query(indexed))
    for term in short:
        where.append(f"{column} LIKE ? ESCAPE '\\'")
        params.append("%" + re.sub(r"([%_\\])", r"\\\1", term) + "%")
    return " AND ".join(where), params
