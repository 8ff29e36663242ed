"""What an edit changed, word by word, with a little context around each change. Pure.

Both renderers (Telegram HTML and the console) mark the same segments their own way, so a
reader on a phone sees at a glance which words went and which came, instead of two whole
texts one after the other.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

CONTEXT_WORDS = 4  # unchanged words kept on each side of a change
_WORD = re.compile(r"\S+")

Op = Literal["same", "del", "ins", "gap"]


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of words: unchanged, removed, added, or an elided unchanged stretch (``gap``)."""

    op: Op
    text: str


def word_diff(before: str, after: str, context: int = CONTEXT_WORDS) -> list[Segment]:
    """The word-level changes from ``before`` to ``after``; long unchanged stretches become
    a ``gap`` (shown as "…"). Whitespace is not a change: a post re-wrapped is the same post."""
    old, new = _WORD.findall(before), _WORD.findall(after)
    # autojunk off: in a long padded post the frequent words are the content, not noise.
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    opcodes = matcher.get_opcodes()
    segments: list[Segment] = []
    for index, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        if tag == "equal":
            segments += _context(new[j1:j2], index == 0, index == len(opcodes) - 1, context)
            continue
        if i2 > i1:
            segments.append(Segment("del", " ".join(old[i1:i2])))
        if j2 > j1:
            segments.append(Segment("ins", " ".join(new[j1:j2])))
    return segments


def changed(segments: list[Segment]) -> bool:
    """True when the segments hold any removed or added word."""
    return any(s.op in ("del", "ins") for s in segments)


def _context(words: list[str], first: bool, last: bool, context: int) -> list[Segment]:
    # Before the first change only its lead-in matters, after the last only the follow-up.
    head = [] if first else words[:context]
    tail = [] if last else words[-context:] if context else []
    if len(head) + len(tail) >= len(words):
        return [Segment("same", " ".join(words))]
    out = [Segment("same", " ".join(head))] if head else []
    out.append(Segment("gap", "…"))
    if tail:
        out.append(Segment("same", " ".join(tail)))
    return out
