"""Fold post text so that the ways dealers disguise a word collapse onto the plain word.

``normalise(text)`` returns the folded text and, for each folded character, the index of the
original character it came from, so a keyword found in the folded text can be reported (and
kept as evidence) as the exact slice of the text the dealer wrote.

Folding, in order: zero-width characters, bidi controls and emoji variation selectors are
dropped; each character is NFKC-normalised (full-width ``ｉｖｏｒｙ``, ligatures, maths
letters) and case-folded; whitespace runs become one space and dashes/underscores a space (so
``ivory-coloured`` and ``ivory coloured`` fold alike); decomposed accents are recomposed;
Cyrillic and Greek look-alikes become Latin inside words that mix scripts (``іvоry``).

Two further forms are *variants* of the folded text, of the same length and so sharing its
index map: accents stripped from Latin letters (``ngà voi`` -> ``nga voi``) and digits read as
letters inside words made mostly of letters (``1v0ry`` -> ``ivory``). They are variants, not
replacements, because both the accented and the digit forms are sometimes the real word.
Letters spelled out one at a time (``i.v.o.r.y``, ``i v o r y``, ``象 牙``, ``i🐘v🐘o``) are
found by :func:`spelled_runs`, which gives the joined letters with their own index map.

:func:`fold_batch` folds many posts at once, the same way, and tells which of them may hold
spelled-out letters or digits used as letters (most hold neither).
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

# Invisible characters dealers slip inside words to defeat keyword search; none carries text.
_INVISIBLE_RANGES = (
    (0x00AD, 0x00AD),  # soft hyphen
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x061C, 0x061C),  # Arabic letter mark (bidi)
    (0x115F, 0x1160),  # Hangul fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels (invisible)
    (0x180B, 0x180F),  # Mongolian variation selectors and vowel separator
    (0x200B, 0x200F),  # zero-width space / joiners, LRM, RLM
    (0x202A, 0x202E),  # bidi embeddings and overrides
    (0x2060, 0x206F),  # word joiner, invisible operators, bidi isolates
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors (emoji vs text presentation)
    (0xFEFF, 0xFEFF),  # zero-width no-break space / BOM
    (0xFFA0, 0xFFA0),  # half-width Hangul filler
    (0xE0000, 0xE007F),  # tag characters
    (0xE0100, 0xE01EF),  # variation selectors supplement
)
_DASHES = frozenset("-_‐‑‒–—―−﹘﹣－＿")
_INVISIBLE = re.compile(
    "[" + "".join(f"\\U{low:08x}-\\U{high:08x}" for low, high in _INVISIBLE_RANGES) + "]"
)
# Whitespace and dashes all read as one space: "ivory-coloured" is "ivory coloured".
# (NFKC has already made the other Unicode spaces plain spaces.)
_SPACE_LIKE = re.compile("[\t\n\r\x0b\x0c\x1c-\x1f\x85\u1680\u2028\u2029\\-_\u2010-\u2015\u2212]")

# Look-alikes that render as Latin letters. Applied only inside words that also contain a
# Latin letter, or that are made only of look-alikes, so real Russian or Greek text is left be.
_CONFUSABLES = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "і": "i", "ї": "i", "ј": "j", "к": "k",
    "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t", "у": "y", "х": "x",
    "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ѵ": "v", "һ": "h", "ӏ": "l", "ɡ": "g",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o",
    "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ϲ": "c", "ϳ": "j",
    # Latin letters from other blocks
    "ı": "i", "ɑ": "a", "ɩ": "i", "ʏ": "y", "ɪ": "i", "ɴ": "n", "ʀ": "r",
}  # fmt: skip
_CONFUSABLE_TABLE = str.maketrans(_CONFUSABLES)
# Digits used as letters, only inside words made mostly of letters (``1v0ry``, ``rh1n0``).
_LEET_TABLE = str.maketrans("013457", "oieast")
_NEEDS_SCRIPT_FIX = re.compile(r"[\u0250-\u02af\u0131\u0370-\u03ff\u0400-\u052f]")
# A digit touching a letter; the digit is looked for first, which keeps the scan fast.
_DIGIT_IN_WORD = re.compile(r"[0-9](?:(?<=[^\W\d_][0-9])|(?=[^\W\d_]))")
_MIN_LEET_WORD = 4  # "5kg", "18k" and the like are left alone
_ACCENTED_LATIN = re.compile("[\u00c0-\u024f\u1e00-\u1eff]")
_ACCENTED_RUN = re.compile("[\u00c0-\u024f\u1e00-\u1eff]+")
_WORD = re.compile(r"[^\W_]+")
_SPACE_RUN = re.compile("  +")
_LATIN_LETTER = re.compile(r"[a-z\u00c0-\u024f\u1e00-\u1eff]")

# Combining marks that belong to the letter before them (Thai and Khmer vowel signs and tone
# marks, Latin accents left uncomposed); a spelled-out letter keeps them.
_MARKS = (
    "\u0300-\u036f\u0e31\u0e34-\u0e3a\u0e47-\u0e4e\u17b6-\u17d3\u17dd\u1ab0-\u1aff\u1dc0-\u1dff"
)
# One spelled-out letter: a letter or digit with its marks, alone between separators (spaces,
# punctuation, emoji: anything that is not a letter, digit or mark), two or more in a row.
_SEP = rf"(?:(?![{_MARKS}])[\W_]){{1,3}}"
_UNIT = rf"[^\W_][{_MARKS}]*"
_SPELLED = re.compile(rf"(?<![^\W_])(?<![{_MARKS}])(?:{_UNIT})(?:{_SEP}{_UNIT})+(?![^\W_])")
_UNIT_RE = re.compile(_UNIT)


def _invisible(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _INVISIBLE_RANGES)


def _fold_char(char: str) -> str:
    """One character folded on its own: "" (dropped), one character, or a few (``ﬁ`` -> fi)."""
    if _invisible(char):
        return ""
    out = []
    for piece in unicodedata.normalize("NFKC", char):
        if piece.isspace() or piece in _DASHES:
            out.append(" ")
        elif not _invisible(piece):
            out.append(piece.casefold())
    return "".join(out)


class _StripTable(dict):
    """Latin letters without their accents, one character for one (``ồ`` -> o, ``đ`` -> d).

    Only Latin letters lose marks: Thai and Khmer vowel signs are marks too, and are letters
    of the word, not optional accents.
    """

    def __missing__(self, code: int) -> str:
        char = chr(code)
        if char in "đđ":
            stripped = "d"
        else:
            base = unicodedata.normalize("NFD", char)[0]
            stripped = base if base != char and _LATIN_LETTER.match(base) else char
        self[code] = stripped
        return stripped


_STRIP = _StripTable()
_FOLD_CACHE: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class Folded:
    """Folded text with where each of its characters came from in the original.

    ``starts[k]``/``ends[k]`` bound the original characters that produced folded character
    ``k`` (an accent typed as a separate character, or a dropped zero-width character, is
    counted with the letter before it). ``None`` means the identity map (the common case).
    """

    text: str
    # Lists, or numpy arrays for a batch of texts (making a list of every index cost more
    # than the rest of folding them).
    starts: Sequence[int] | None = None
    ends: Sequence[int] | None = None

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original ``[start, end)`` of folded characters ``start .. end-1``."""
        if self.starts is None or self.ends is None:
            return start, end
        return int(self.starts[start]), int(self.ends[end - 1])

    def index_map(self) -> list[int]:
        """The original index of each folded character."""
        if self.starts is None:
            return list(range(len(self.text)))
        return [int(index) for index in self.starts]


def normalise(text: str) -> tuple[str, list[int]]:
    """Folded ``text`` and the original index of each folded character (see the module)."""
    folded = fold(text)
    return folded.text, folded.index_map()


def fold(text: str) -> Folded:
    """Fold ``text``; the index map is only built when a character did not fold one-for-one.

    Most posts are already NFKC and free of invisible characters: they are folded by a few
    C-level string operations, with the identity index map or, where runs of spaces (line
    breaks, `` - ``) became one space, a map built run by run.
    """
    spaced = _fold_in_place(text)
    if spaced is None:
        return _fold_slowly(text)
    if "  " not in spaced:
        return Folded(_fix_scripts(spaced))
    return _collapse_spaces(spaced)


def _fold_in_place(text: str) -> str | None:
    """``text`` case-folded, with space-like characters as spaces, when every character
    folds to exactly one (so the result has ``text``'s length); else None."""
    if unicodedata.is_normalized("NFKC", text) and not _INVISIBLE.search(text):
        folded = text.casefold()
        # casefold never shortens a character, so equal length means one-for-one
        if len(folded) == len(text):
            return _SPACE_LIKE.sub(" ", folded)
    return None


def _collapse_spaces(spaced: str) -> Folded:
    """``spaced`` with each run of spaces as one, and the map back to ``spaced`` (the first
    space of a run stands for the whole run, as :func:`_fold_slowly` maps it)."""
    starts: list[int] = []
    ends: list[int] = []
    done = 0
    for run in _SPACE_RUN.finditer(spaced):
        first, last = run.span()
        starts += range(done, first + 1)
        ends += range(done + 1, first + 1)
        ends.append(last)
        done = last
    starts += range(done, len(spaced))
    ends += range(done + 1, len(spaced) + 1)
    return Folded(_fix_scripts(_SPACE_RUN.sub(" ", spaced)), starts, ends)


def _fold_slowly(text: str) -> Folded:
    """Character by character, keeping where each folded character came from."""
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for index, char in enumerate(text):
        piece = _FOLD_CACHE.get(char)
        if piece is None:
            piece = _FOLD_CACHE[char] = _fold_char(char)
        if not piece:  # dropped: the span of the letter before it grows over it
            if ends:
                ends[-1] = index + 1
            continue
        if unicodedata.combining(char) and chars:
            composed = unicodedata.normalize("NFC", chars[-1] + piece)
            if len(composed) == 1:  # an accent typed separately joins its letter
                chars[-1] = composed
                ends[-1] = index + 1
                continue
        for part in piece:
            if part == " " and chars and chars[-1] == " ":
                ends[-1] = index + 1
                continue
            chars.append(part)
            starts.append(index)
            ends.append(index + 1)
    return Folded(_fix_scripts("".join(chars)), starts, ends)


def _fix_scripts(text: str) -> str:
    """Cyrillic/Greek look-alikes become Latin inside mixed-script words (same length)."""
    if not _NEEDS_SCRIPT_FIX.search(text):
        return text
    return _WORD.sub(_fix_word, text)


def _fix_word(match: re.Match[str]) -> str:
    word = match.group()
    if not _NEEDS_SCRIPT_FIX.search(word):
        return word
    letters = [c for c in word if c.isalpha()]
    all_lookalike = all(c in _CONFUSABLES or c.isascii() for c in letters)
    if _LATIN_LETTER.search(word) or all_lookalike:
        return word.translate(_CONFUSABLE_TABLE)
    return word


def variants(text: str) -> list[str]:
    """``text`` and its accent-stripped and digits-as-letters forms, all of the same length."""
    forms = leet_forms(text)
    if _ACCENTED_LATIN.search(text):
        forms += [strip_accents(form) for form in list(forms)]
    return forms


def leet_forms(text: str) -> list[str]:
    """``text``, and its digits-as-letters form when that differs (same length)."""
    if _DIGIT_IN_WORD.search(text):
        unleet = _unleet(text)
        if unleet != text:
            return [text, unleet]
    return [text]


def strip_accents(text: str) -> str:
    """Latin letters without accents, character for character."""
    # Runs of accented letters only: str.translate through the table costs a dict lookup
    # for every character of the post, and most characters are plain.
    return _ACCENTED_RUN.sub(_strip_run, text)


def _strip_run(match: re.Match[str]) -> str:
    return match.group().translate(_STRIP)


def _unleet(text: str) -> str:
    """Digits read as letters in each word of mostly letters that has a digit (``1v0ry``)."""
    pieces = []
    done = 0
    for match in _DIGIT_IN_WORD.finditer(text):
        if match.start() < done:
            continue
        start, end = match.start(), match.end()
        while start > 0 and text[start - 1].isalnum():
            start -= 1
        while end < len(text) and text[end].isalnum():
            end += 1
        word = text[start:end]
        digits = sum(map(str.isdigit, word))
        if len(word) >= _MIN_LEET_WORD and len(word) - digits > digits:
            pieces += [text[done:start], word.translate(_LEET_TABLE)]
            done = end
    return "".join(pieces) + text[done:] if pieces else text


@dataclass(frozen=True, slots=True)
class SpelledRun:
    """Letters spelled out one by one, joined: ``text`` with the folded index of each letter."""

    text: str
    positions: list[int]  # folded index of each character of ``text``


def spelled_runs(folded: str) -> list[SpelledRun]:
    """Runs of two or more single letters split by separators, joined up.

    ``i.v.o.r.y`` -> ivory, ``象 牙`` -> 象牙, ``i🐘v🐘o🐘r🐘y`` -> ivory. Ordinary words are
    longer than one letter, so ordinary text yields no runs.
    """
    return [_joined(folded, m, _UNIT_RE) for m in _SPELLED.finditer(folded)]


def _joined(folded: str, match: re.Match[str], unit_re: re.Pattern[str]) -> SpelledRun:
    chars: list[str] = []
    positions: list[int] = []
    for unit in unit_re.finditer(folded, match.start(), match.end()):
        for offset, char in enumerate(unit.group()):
            chars.append(char)
            positions.append(unit.start() + offset)
    return SpelledRun("".join(chars), positions)


# Scripts written without spaces between words: a term in them matches anywhere, while a term
# in a spaced script (Latin, Vietnamese, Cyrillic, Greek) must be a whole word.
_UNSPACED_RANGES = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x19E0, 0x19FF),  # Khmer symbols
    (0x2E80, 0x2FDF),  # CJK radicals
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3100, 0x312F),  # Bopomofo
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0x20000, 0x3FFFF),  # CJK extensions B and later
)


_UNSPACED_CLASS = "".join(f"\\U{low:08x}-\\U{high:08x}" for low, high in _UNSPACED_RANGES)
_UNSPACED = re.compile(f"[{_UNSPACED_CLASS}]")


def is_unspaced(char: str) -> bool:
    """A character of a script written without spaces between words (CJK, Thai, Khmer)."""
    return bool(_UNSPACED.match(char))


def is_word_char(char: str) -> bool:
    """A letter, digit or mark of a script that puts spaces between words."""
    if not (char.isalnum() or unicodedata.combining(char)):
        return False
    code = ord(char)
    return not any(low <= code <= high for low, high in _UNSPACED_RANGES)


# -- many texts at once ----------------------------------------------------------------------
# A capture's new posts are folded together: one pass of each C-level string operation over
# all of them instead of one per post (most of a short post's cost was the calls, not the
# characters), and numpy screens over the joined text rule out spelled-out letters and
# digits used as letters for most posts, so the regular expressions that find those (a third
# of the time per post) run only on posts that may hold them.
BATCH_SEPARATOR = "\x00" * 4  # not word characters, and longer than a spelled run's separator
_WORD_BIT, _MARK_BIT, _UNKNOWN_BIT, _INVISIBLE_BIT, _SPACE_BIT, _SCRIPT_BIT = 1, 2, 4, 8, 16, 32
_CLASSIFIED = 0x30000  # characters above (CJK extension G on, private use) are screened out
_STRIPPED_BELOW = 0x1F00  # accented Latin letters are all below this
_MARK_CHAR = re.compile(f"[{_MARKS}]")


@dataclass(frozen=True, slots=True)
class FoldedBatch:
    """Texts folded together: ``joined`` is their folded text, joined by
    :data:`BATCH_SEPARATOR`, with its map back to the texts joined as written; ``stripped``
    is ``joined.text`` without accents (same length).

    Text ``i`` is ``joined.text[starts[i]:ends[i]]`` folded and begins at ``offsets[i]`` of
    the texts joined as written. ``spelled`` and ``leet`` name the texts that may hold
    spelled-out letters or digits used as letters: the others certainly hold none.
    """

    joined: Folded
    stripped: str
    starts: list[int]
    ends: list[int]
    offsets: list[int]
    spelled: frozenset[int]
    leet: frozenset[int]

    def folded(self, index: int) -> str:
        """Text ``index``, folded."""
        return self.joined.text[self.starts[index] : self.ends[index]]

    def span(self, index: int) -> Callable[[int, int], tuple[int, int]]:
        """The span map of text ``index``: its folded ``[start, end)`` to its own, as
        :meth:`Folded.span` for the text folded alone."""
        first, shift = self.starts[index], self.offsets[index]

        def span(start: int, end: int) -> tuple[int, int]:
            begin, finish = self.joined.span(start + first, end + first)
            return begin - shift, finish - shift

        return span


def fold_batch(texts: list[str]) -> FoldedBatch | None:
    """``texts`` folded together, or None when one of them cannot be folded character by
    character (it has invisible characters or compatibility forms: fold it with
    :func:`fold`).

    The same folding as :func:`fold`, with the checks for invisible characters, space-like
    characters, runs of spaces and look-alike scripts made on numpy's array of the text.
    """
    joined = BATCH_SEPARATOR.join(texts)
    lowered = joined.casefold()
    if len(lowered) != len(joined) or not unicodedata.is_normalized("NFKC", joined):
        return None
    codes = np.frombuffer(lowered.encode("utf-32-le"), dtype="<u4")
    classes = _class_table().take(codes, mode="clip")
    if codes.max(initial=0) >= _CLASSIFIED:  # rare: tags (invisible), CJK ext. G, private use
        if _INVISIBLE.search(lowered):
            return None
        classes[codes >= _CLASSIFIED] = _UNKNOWN_BIT
    present = int(np.bitwise_or.reduce(classes))
    if present & _INVISIBLE_BIT:
        return None
    text = lowered
    if present & _SPACE_BIT:
        spaced = _space_table().take(codes, mode="clip")
        codes = np.where(codes >= _CLASSIFIED, codes, spaced) if present & _UNKNOWN_BIT else spaced
        text = _decode(codes)
    offsets = _offsets(texts)
    folded, codes, classes = _collapse_codes(text, codes, classes)
    if present & _SCRIPT_BIT:
        folded = replace(folded, text=_fix_scripts(folded.text))
        codes = np.frombuffer(folded.text.encode("utf-32-le"), dtype="<u4")
    if folded.starts is None:
        starts, ends = offsets, [o + len(t) for o, t in zip(offsets, texts, strict=True)]
    else:
        # The first character of a text and the separator after it are never dropped.
        origin = folded.starts
        bounds = np.asarray(offsets)
        starts = np.searchsorted(origin, bounds).tolist()
        ends = np.searchsorted(origin, bounds + np.fromiter(map(len, texts), int)).tolist()
    owner = np.asarray(starts)

    def texts_at(positions: np.ndarray) -> frozenset[int]:
        return frozenset((np.searchsorted(owner, positions, side="right") - 1).tolist())

    unknown = texts_at((classes & _UNKNOWN_BIT).nonzero()[0]) if present & _UNKNOWN_BIT else ()
    return FoldedBatch(
        joined=folded,
        stripped=_strip_codes(codes, bool(present & _UNKNOWN_BIT)),
        starts=starts,
        ends=ends,
        offsets=offsets,
        spelled=texts_at(_spelled_starts(classes)).union(unknown),
        leet=texts_at(_leet_words(codes, classes)).union(unknown),
    )


def _offsets(texts: list[str]) -> list[int]:
    """Where each text starts in the texts joined by :data:`BATCH_SEPARATOR`."""
    step = len(BATCH_SEPARATOR)
    return list(itertools.accumulate((len(t) + step for t in texts[:-1]), initial=0))


def _collapse_codes(
    text: str, codes: np.ndarray, classes: np.ndarray
) -> tuple[Folded, np.ndarray, np.ndarray]:
    """``text`` (whose code points are ``codes``) with each run of spaces as one, as
    :func:`_collapse_spaces` does it, with its codes and classes."""
    if "  " not in text:
        return Folded(text), codes, classes
    space = codes == 0x20
    repeat = np.zeros_like(space)
    repeat[1:] = space[1:] & space[:-1]
    kept = (~repeat).nonzero()[0]
    codes, classes = codes[kept], classes[kept]
    ends = np.append(kept[1:], len(space))
    return Folded(_decode(codes), kept, ends), codes, classes


def _spelled_starts(classes: np.ndarray) -> np.ndarray:
    """Positions where a spelled run (see :data:`_SPELLED`) may start: a lone letter (no
    letter either side once marks are left out) with, at most four places on, a letter that
    has no letter before it and none or a mark after it (the last letter of a run may be
    cut before its marks). A superset: :func:`spelled_runs` decides."""
    marks = (classes & _MARK_BIT) != 0
    kept = (~marks).nonzero()[0]
    word = (classes[kept] & _WORD_BIT) != 0
    alone_before = word.copy()
    alone_before[1:] &= ~word[:-1]
    none_after = np.ones_like(word)
    none_after[:-1] = ~word[1:]
    lone = (alone_before & none_after).nonzero()[0]
    if not len(lone):
        return lone
    mark_after = np.append(marks, False)[kept + 1]
    last = (alone_before & (none_after | mark_after)).nonzero()[0]
    following = np.searchsorted(last, lone, side="right")
    has_next = following < len(last)
    near = last[np.minimum(following, len(last) - 1)] - lone <= 4
    return kept[lone[has_next & near]]


def _leet_words(codes: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Starts of the words :func:`leet_forms` may rewrite: at least four letters and digits,
    with a digit 0-9, and fewer digits than letters. A superset: ``leet_forms`` decides."""
    digit = (codes >= 0x30) & (codes <= 0x39)
    if not digit.any():
        return digit.nonzero()[0]
    word = (classes & _WORD_BIT) != 0
    first = word.copy()
    first[1:] &= ~word[:-1]
    last = word.copy()
    last[:-1] &= ~word[1:]
    starts, ends = first.nonzero()[0], last.nonzero()[0] + 1
    # Between one word's end and the next one's start there are no digits (digits are word
    # characters), so summing from start to start counts each word's digits.
    count = np.add.reduceat(digit.view(np.int8), starts, dtype=np.int32)
    length = ends - starts
    return starts[(length >= _MIN_LEET_WORD) & (count >= 1) & (length > 2 * count)]


def _strip_codes(codes: np.ndarray, high: bool) -> str:
    """:func:`strip_accents` of the text whose code points are ``codes`` (``high``: some are
    above the table, which would clip them)."""
    stripped = _strip_table().take(codes, mode="clip")
    if high:
        stripped = np.where(codes >= _CLASSIFIED, codes, stripped)
    return _decode(stripped)


def _decode(codes: np.ndarray) -> str:
    return codes.astype("<u4", copy=False).tobytes().decode("utf-32-le")


@functools.cache
def _class_table() -> np.ndarray:
    """What each character below :data:`_CLASSIFIED` is, as bits: a word character
    (``isalnum``), a mark (:data:`_MARKS`), invisible, space-like, or a Greek or Cyrillic
    look-alike candidate; built once, in ~0.3 s."""
    table = np.zeros(_CLASSIFIED, dtype=np.uint8)
    for code in range(_CLASSIFIED):
        char = chr(code)
        bits = _WORD_BIT if char.isalnum() else _MARK_BIT if _MARK_CHAR.match(char) else 0
        if _INVISIBLE.match(char):
            bits |= _INVISIBLE_BIT
        if _SPACE_LIKE.match(char):
            bits |= _SPACE_BIT
        if _NEEDS_SCRIPT_FIX.match(char):
            bits |= _SCRIPT_BIT
        table[code] = bits
    return table


@functools.cache
def _space_table() -> np.ndarray:
    """Each code point below :data:`_CLASSIFIED`, space-like ones (see :data:`_SPACE_LIKE`)
    as a space."""
    table = np.arange(_CLASSIFIED, dtype=np.uint32)
    table[(_class_table() & _SPACE_BIT) != 0] = 0x20
    return table


@functools.cache
def _strip_table() -> np.ndarray:
    """Each code point below :data:`_CLASSIFIED` as :func:`strip_accents` leaves it."""
    table = np.arange(_CLASSIFIED, dtype=np.uint32)
    for code in range(0xC0, _STRIPPED_BELOW):
        if _ACCENTED_LATIN.match(chr(code)):
            table[code] = ord(_STRIP[code])
    return table
