"""Keyword groups (watchlist ``keywords:`` and lexicon files) and the matcher that finds them.

A *lexicon* file names groups of terms for one product or animal, with the public report each
group comes from and the innocent phrases that must not count (``ivory-coloured``)::

    groups:
      ivory:
        source: "TRAFFIC (2015) Moving Targets ... https://..."
        confidence: high             # low: a code word that is also everyday language
        terms:
          - ivory
          - {term: 象牙, lang: zh}
          - {term: đồi mồi, lang: vi, diacritics: strict}   # else accents are optional
          - {term: "🐘🦷", emoji: true}
        exclude: [ivory-coloured, ivory coast]

The matcher folds each post (see :mod:`watcher.detect.normalise`) and runs one Aho-Corasick
automaton over it, so the cost of a post hardly grows with the number of terms;
:meth:`KeywordMatcher.find_many` does that for a capture's new posts together.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import ahocorasick
import yaml

from watcher.detect.normalise import (
    FoldedBatch,
    fold,
    fold_batch,
    is_unspaced,
    is_word_char,
    leet_forms,
    spelled_runs,
    strip_accents,
    variants,
)
from watcher.errors import WatcherError

DEFAULT = "default"
CONFIDENCES = ("high", "low")
_GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_GROUP_KEYS = ("source", "confidence", "terms", "exclude", "description")
_TERM_KEYS = ("term", "lang", "diacritics", "emoji", "note")
_DIACRITICS = {"strict": True, "loose": False, "optional": False}
# Joined spelled-out letters drop spaces, so a short multi-word term ("te te") would be too
# easy to spell by accident; only terms this long are looked for in them.
_MIN_JOINED = 4
# Characters folded and scanned at once by find_many: a capture's new posts, in few batches,
# with numpy's arrays of them a few MB at most.
BATCH_CHARS = 200_000
# Below this many texts, numpy's fixed cost per call outweighs what batching saves.
MIN_BATCH = 8


@dataclass(frozen=True, slots=True)
class KeywordMatch:
    """One keyword found in a post; ``text`` is ``original[start:end]``, kept as evidence."""

    group: str
    term: str
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class Term:
    """A term as the lexicon writes it, with how it may match."""

    text: str
    lang: str | None = None
    strict: bool = False  # accents must match exactly (else ``nga voi`` matches ``ngà voi``)
    emoji: bool = False


@dataclass(frozen=True, slots=True)
class Group:
    """A named group of terms and the innocent phrases that cancel a match of them."""

    name: str
    terms: tuple[Term, ...]
    exclude: tuple[str, ...] = ()
    source: str = ""
    confidence: str = "high"
    origins: tuple[str, ...] = ()  # the files (or "watchlist") the group was read from

    def merged(self, other: Group) -> Group:
        """This group with ``other``'s terms, exclusions and sources added."""
        sources = [s for s in (self.source, other.source) if s]
        return replace(
            self,
            terms=tuple(dict.fromkeys(self.terms + other.terms)),
            exclude=tuple(dict.fromkeys(self.exclude + other.exclude)),
            source="; ".join(dict.fromkeys(sources)),
            confidence="low" if "low" in (self.confidence, other.confidence) else "high",
            origins=tuple(dict.fromkeys(self.origins + other.origins)),
        )


@dataclass
class Lexicon:
    """Every keyword group in force: the lexicon files' and the watchlist's, merged by name."""

    groups: dict[str, Group] = field(default_factory=dict)

    @classmethod
    def load(
        cls, watchlist_keywords: dict[str, list[str]], lexicon_files: list[str], base_dir: Path
    ) -> Lexicon:
        """Read ``lexicon_files`` (``"default"`` is the bundled lexicon; other names are paths
        relative to ``base_dir``) and add the watchlist's own groups.

        A problem in a file raises WatcherError naming the file and line.
        """
        lexicon = cls()
        for name in lexicon_files:
            for path in _resolve(name, base_dir):
                lexicon.add(read_lexicon(path))
        lexicon.add(_watchlist_groups(watchlist_keywords))
        return lexicon

    def add(self, groups: list[Group]) -> None:
        """Add groups, merging any whose name is already known."""
        for group in groups:
            known = self.groups.get(group.name)
            self.groups[group.name] = known.merged(group) if known else group

    def term_count(self) -> int:
        """How many terms there are across all groups."""
        return sum(len(g.terms) for g in self.groups.values())


def bundled_lexicons() -> list[Path]:
    """The lexicon files shipped with watcher (what ``"default"`` stands for)."""
    folder = resources.files("watcher").joinpath("lexicons")
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith((".yaml", ".yml")))


def _resolve(name: str, base_dir: Path) -> list[Path]:
    if name == DEFAULT:
        return bundled_lexicons()
    path = Path(name)
    return [path if path.is_absolute() else base_dir / path]


# -- reading lexicon files -------------------------------------------------------------------
def read_lexicon(path: Path) -> list[Group]:
    """The groups in one lexicon file; WatcherError with the file and line on any problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _problem(path, None, "the lexicon file does not exist", _PATH_FIX) from None
    except UnicodeDecodeError:
        raise _problem(path, None, "the file is not UTF-8 text", "save it as UTF-8") from None
    except OSError as exc:
        raise _problem(path, None, f"cannot read it ({exc.strerror})", _PATH_FIX) from None
    return parse_lexicon(text, str(path))


def parse_lexicon(text: str, path: str = "<lexicon>") -> list[Group]:
    """Check lexicon text and return its groups (``path`` is only used in error messages)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or "the YAML cannot be read"
        raise _problem(path, line, problem, _YAML_FIX) from None
    if not isinstance(root, yaml.MappingNode):
        raise _problem(path, _line(root), "the file should start with `groups:`", _GROUPS_FIX)
    groups_node = _mapping(root, path).get("groups")
    if groups_node is None:
        raise _problem(path, _line(root), "`groups:` is missing", _GROUPS_FIX)
    value = groups_node[1]
    if not isinstance(value, yaml.MappingNode) or not value.value:
        raise _problem(path, _line(value), "`groups:` has no groups", _GROUPS_FIX)
    return [_group(name, key, node, path) for name, (key, node) in _mapping(value, path).items()]


def _mapping(node: yaml.MappingNode, path: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """Keys of a YAML mapping with their nodes; a repeated key is an error (YAML keeps one)."""
    seen: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key, value in node.value:
        name = str(key.value)
        if name in seen:
            raise _problem(
                path, _line(key), f"`{name}` appears twice", "merge the two into one entry"
            )
        seen[name] = (key, value)
    return seen


def _group(name: str, key: yaml.Node, node: yaml.Node, path: str) -> Group:
    # Problems with the group as a whole are reported on the line that names it.
    if not _GROUP_NAME.match(name):
        raise _problem(path, _line(key), f"the group name `{name}` cannot be used", _NAME_FIX)
    if not isinstance(node, yaml.MappingNode):
        raise _problem(path, _line(key), f"group `{name}` should be a block of keys", _GROUP_FIX)
    keys = _mapping(node, path)
    for field_name, (field_node, _value) in keys.items():
        if field_name not in _GROUP_KEYS:
            fix = f"use only: {', '.join(_GROUP_KEYS)}"
            message = f"group `{name}`: unknown key `{field_name}`"
            raise _problem(path, _line(field_node), message, fix)
    if "terms" not in keys:
        raise _problem(path, _line(key), f"group `{name}` has no `terms:`", _GROUP_FIX)
    terms_node = keys["terms"][1]
    terms = tuple(_term(item, name, path) for item in _sequence(terms_node, name, "terms", path))
    if not terms:
        raise _problem(path, _line(terms_node), f"group `{name}` has no terms", _GROUP_FIX)
    exclude = ()
    if "exclude" in keys:
        items = _sequence(keys["exclude"][1], name, "exclude", path)
        exclude = tuple(_term(item, name, path).text for item in items)
    confidence = _text(keys["confidence"][1], name, path) if "confidence" in keys else "high"
    if confidence not in CONFIDENCES:
        line = _line(keys["confidence"][1])
        fix = "write high or low"
        raise _problem(path, line, f"group `{name}`: unknown confidence `{confidence}`", fix)
    source = _text(keys["source"][1], name, path) if "source" in keys else ""
    return Group(name, terms, exclude, source, confidence, (path,))


def _sequence(node: yaml.Node, group: str, key: str, path: str) -> list[yaml.Node]:
    if not isinstance(node, yaml.SequenceNode):
        message = f"group `{group}`: `{key}:` should be a list"
        raise _problem(path, _line(node), message, "write one item per line starting with `- `")
    return list(node.value)


def _term(node: yaml.Node, group: str, path: str) -> Term:
    where = f"group `{group}`: term"
    if isinstance(node, yaml.ScalarNode):
        return Term(_text(node, where, path))
    if not isinstance(node, yaml.MappingNode):
        raise _problem(path, _line(node), f"{where} should be text", _TERM_FIX)
    keys = _mapping(node, path)
    for key, (key_node, _value) in keys.items():
        if key not in _TERM_KEYS:
            fix = f"use only: {', '.join(_TERM_KEYS)}"
            raise _problem(path, _line(key_node), f"{where}: unknown key `{key}`", fix)
    if "term" not in keys:
        raise _problem(path, _line(node), f"{where}: `term:` is missing", _TERM_FIX)
    text = _text(keys["term"][1], where, path)
    lang = _text(keys["lang"][1], where, path) if "lang" in keys else None
    strict = False
    if "diacritics" in keys:
        value = _text(keys["diacritics"][1], where, path)
        if value not in _DIACRITICS:
            fix = "write strict (accents must match) or loose (accents optional)"
            line = _line(keys["diacritics"][1])
            raise _problem(path, line, f"{where} `{text}`: unknown diacritics `{value}`", fix)
        strict = _DIACRITICS[value]
    emoji = "emoji" in keys and _flag(keys["emoji"][1], f"{where} `{text}`", path)
    return Term(text, lang, strict, emoji)


def _text(node: yaml.Node, where: str, path: str) -> str:
    if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
        raise _problem(path, _line(node), f"{where} should be text", _TERM_FIX)
    text = str(node.value).strip()
    if not text or not fold(text).text.strip():
        raise _problem(path, _line(node), f"{where} is empty", _TERM_FIX)
    return text


def _flag(node: yaml.Node, where: str, path: str) -> bool:
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:bool":
        return str(node.value).lower() in ("true", "yes", "on")
    raise _problem(path, _line(node), f"{where}: `emoji:` should be true or false", "write true")


def _line(node: yaml.Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None else None


def _problem(path: str | Path, line: int | None, message: str, fix: str) -> WatcherError:
    where = f"{path}, line {line}" if line else str(path)
    return WatcherError(f"lexicon {where}: {message}. Fix: {fix}")


def _watchlist_groups(keywords: dict[str, list[str]]) -> list[Group]:
    groups = []
    for name, words in keywords.items():
        where = f"watchlist keywords `{name}`"
        if not _GROUP_NAME.match(name):
            raise WatcherError(f"{where}: the group name cannot be used. Fix: {_NAME_FIX}")
        terms = []
        for word in words or []:
            if not isinstance(word, str) or not fold(word).text.strip():
                raise WatcherError(f"{where}: a term is empty. Fix: {_TERM_FIX}")
            terms.append(Term(word.strip()))
        if not terms:
            raise WatcherError(f"{where}: the group has no terms. Fix: {_GROUP_FIX}")
        groups.append(Group(name, tuple(terms), source="watchlist", origins=("watchlist",)))
    return groups


_PATH_FIX = "check the path under `lexicons:` (relative to the watchlist), or write default"
_YAML_FIX = "check the indentation and that every `key: value` has a space after the colon"
_GROUPS_FIX = "start the file with `groups:` and put each group below it, indented"
_NAME_FIX = "use letters, digits, `_`, `.` and `-` only, e.g. rhino_horn"
_GROUP_FIX = "give the group a `terms:` list with at least one term, e.g. terms: [ivory, tusk]"
_TERM_FIX = 'write the term as text, or as {term: "象牙", lang: zh}'


# -- matching --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Entry:
    """What one automaton key stands for."""

    group: str
    term: str
    exclude: bool
    left: bool  # the key must start a word (its first character is a spaced-script letter)
    right: bool  # ... and end one
    exact: str | None = None  # a strict term's key with its accents: the text must match it


@dataclass(frozen=True, slots=True)
class _Hit:
    start: int  # original text
    end: int
    entry: _Entry

    @property
    def length(self) -> int:
        return self.end - self.start


class KeywordMatcher:
    """Finds a lexicon's terms in posts: built once, then :meth:`find` for each post."""

    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon
        # Keys without accents, matched in the accent-stripped text: one scan finds loose and
        # strict terms alike, and a strict term's hit is then checked against the text as
        # written (hits are rare; a second scan for strict terms cost every post).
        words: dict[str, list[_Entry]] = {}
        joined: dict[str, list[_Entry]] = {}
        for group in lexicon.groups.values():
            for term in group.terms:
                for key in _keys(term.text, term.strict, plural=not term.emoji):
                    entry = _entry(group.name, term.text, key, False)
                    if term.strict:
                        entry = replace(entry, exact=key)
                    words.setdefault(strip_accents(key), []).append(entry)
                    if not term.emoji and _joinable(key):
                        entry = _Entry(group.name, term.text, False, False, False)
                        joined.setdefault(key.replace(" ", ""), []).append(entry)
            for phrase in group.exclude:
                for key in _keys(phrase, strict=False, plural=True):
                    words.setdefault(key, []).append(_entry(group.name, phrase, key, True))
        self._words = _automaton(words)
        self._joined = _automaton(joined)

    def find(self, text: str) -> list[KeywordMatch]:
        """Matches in ``text``, by position; overlaps go to the longest, excluded ones dropped."""
        folded = fold(text)
        hits = self._word_hits(leet_forms(folded.text), folded.span)
        hits += self._spelled_hits(folded.text, folded.span)
        return _matches(text, hits)

    def find_many(self, texts: Sequence[str]) -> list[list[KeywordMatch]]:
        """``[self.find(text) for text in texts]``, in less time: texts that fold one-for-one
        (most posts) are folded and scanned together, and only those that may hold digits
        used as letters or spelled-out letters are searched for them."""
        if len(texts) < MIN_BATCH:
            return [self.find(text) for text in texts]
        found: list[list[KeywordMatch]] = [[] for _ in texts]
        for indexes in _chunks(texts):
            for group, batch in _fold_groups([texts[i] for i in indexes]):
                if batch is None:  # one text that does not fold one-for-one
                    found[indexes[group[0]]] = self.find(texts[indexes[group[0]]])
                    continue
                for member, hits in self._batch_hits(batch).items():
                    index = indexes[group[member]]
                    found[index] = _matches(texts[index], hits)
        return found

    def _batch_hits(self, batch: FoldedBatch) -> dict[int, list[_Hit]]:
        """Hits of each text of ``batch`` that has any, in the text's own positions."""
        hits: dict[int, list[_Hit]] = {}
        joined = batch.joined
        for hit in _scan(self._words, batch.stripped, joined.text, joined.span):
            member = bisect.bisect_right(batch.offsets, hit.start) - 1
            shift = batch.offsets[member]
            hits.setdefault(member, []).append(_Hit(hit.start - shift, hit.end - shift, hit.entry))
        for member in batch.leet | batch.spelled:
            folded, span = batch.folded(member), batch.span(member)
            more = self._word_hits(leet_forms(folded)[1:], span)
            if member in batch.spelled:
                more += self._spelled_hits(folded, span)
            if more:
                hits.setdefault(member, []).extend(more)
        return hits

    def _word_hits(self, forms: list[str], span: Any) -> list[_Hit]:
        hits = []
        for written in forms:
            hits += _scan(self._words, strip_accents(written), written, span)
        return hits

    def _spelled_hits(self, folded: str, span: Any) -> list[_Hit]:
        hits = []
        for run in spelled_runs(folded):
            hits += self._joined_hits(run.text, run.positions, span)
        return hits

    def _joined_hits(self, joined: str, positions: list[int], span: Any) -> list[_Hit]:
        hits = []
        for form in variants(joined):
            for last, (size, entries) in self._joined.iter(form):
                first = last - size + 1
                start, end = span(positions[first], positions[last] + 1)
                hits += [_Hit(start, end, entry) for entry in entries]
        return hits


def _chunks(texts: Sequence[str]) -> Iterator[list[int]]:
    """Indexes of ``texts`` in runs of at most BATCH_CHARS characters (bounds numpy's arrays)."""
    chunk: list[int] = []
    size = 0
    for index, text in enumerate(texts):
        if chunk and size + len(text) > BATCH_CHARS:
            yield chunk
            chunk, size = [], 0
        chunk.append(index)
        size += len(text)
    if chunk:
        yield chunk


def _fold_groups(texts: list[str]) -> Iterator[tuple[list[int], FoldedBatch | None]]:
    """``texts`` (by index) in batches that fold one-for-one, halving a batch that does not
    until the text that spoils it stands alone (with None: fold it by itself)."""
    pending = [list(range(len(texts)))]
    while pending:
        group = pending.pop()
        batch = fold_batch([texts[i] for i in group])
        if batch is not None or len(group) == 1:
            yield group, batch
        else:
            half = len(group) // 2
            pending += [group[half:], group[:half]]


def _matches(text: str, hits: list[_Hit]) -> list[KeywordMatch]:
    """The hits that stand (exclusions dropped, overlaps to the longest) as matches."""
    return [
        KeywordMatch(h.entry.group, h.entry.term, h.start, h.end, text[h.start : h.end])
        for h in _longest(_drop_excluded(hits))
    ]


def _scan(automaton: ahocorasick.Automaton, form: str, written: str, span: Any) -> list[_Hit]:
    """Hits of ``automaton``'s keys in ``form`` (``written`` without accents, same length),
    whole words where the key asks for it, accents as written where the term is strict."""
    hits = []
    for last, (size, entries) in automaton.iter(form):
        first = last - size + 1
        before = form[first - 1] if first > 0 else " "
        after = form[last + 1] if last + 1 < len(form) else " "
        for entry in entries:
            if entry.left and is_word_char(before):
                continue
            if entry.right and is_word_char(after):
                continue
            if entry.exact is not None and written[first : last + 1] != entry.exact:
                continue
            hits.append(_Hit(*span(first, last + 1), entry))
    return hits


def _keys(text: str, strict: bool, plural: bool) -> list[str]:
    """Automaton keys for a term: folded (accents stripped unless strict), plus an English
    plural for a term ending in a Latin letter (``tusk`` -> ``tusks``)."""
    key = fold(text).text.strip()
    if not strict:
        key = strip_accents(key)
    keys = [key]
    if plural and key[-1].isascii() and key[-1].isalpha() and not key.endswith("s"):
        keys.append(key + "s")
    return keys + _spaced_out(key)


def _spaced_out(key: str) -> list[str]:
    """A term of a script written without spaces, with one space between two of its letters
    (``ស្នែង រមាស``, ``งา ช้าง``): writers sometimes space the words of a compound."""
    if " " in key or not all(is_unspaced(c) for c in key):
        return []
    return [
        key[:i] + " " + key[i:]
        for i in range(1, len(key))
        if not unicodedata.combining(key[i]) and not _is_dependent(key[i])
    ]


def _is_dependent(char: str) -> bool:
    """Thai and Khmer signs written after a consonant that a space would never precede."""
    return unicodedata.category(char) == "Mc" or char in "\u0e30\u0e32\u0e33\u0e45\u17d2"


def _joinable(key: str) -> bool:
    """Whether to look for a key in spelled-out letters: CJK, Thai and Khmer words are short,
    a Latin term must have at least ``_MIN_JOINED`` letters."""
    letters = key.replace(" ", "")
    return len(letters) >= (_MIN_JOINED if is_word_char(letters[0]) else 2)


def _entry(group: str, term: str, key: str, exclude: bool) -> _Entry:
    return _Entry(group, term, exclude, is_word_char(key[0]), is_word_char(key[-1]))


def _automaton(keys: dict[str, list[_Entry]]) -> ahocorasick.Automaton:
    automaton = ahocorasick.Automaton()
    for key, entries in keys.items():
        automaton.add_word(key, (len(key), tuple(dict.fromkeys(entries))))
    if len(automaton):
        automaton.make_automaton()
    return automaton


def _drop_excluded(hits: list[_Hit]) -> list[_Hit]:
    """Term hits not overlapping an innocent phrase of their own group."""
    excluded: dict[str, list[tuple[int, int]]] = {}
    for hit in hits:
        if hit.entry.exclude:
            excluded.setdefault(hit.entry.group, []).append((hit.start, hit.end))
    return [
        h
        for h in hits
        if not h.entry.exclude
        and not any(s < h.end and h.start < e for s, e in excluded.get(h.entry.group, ()))
    ]


def _longest(hits: list[_Hit]) -> list[_Hit]:
    """Overlapping hits resolved to the longest (then earliest); the same span found for two
    groups is kept for both, and each group/span is reported once."""
    kept: list[_Hit] = []
    seen: set[tuple[str, int, int]] = set()
    # The kept spans never overlap one another, so sorted by start they are sorted by end too:
    # only the last kept span starting before a hit's end can overlap it (a bisect, not a scan
    # of every kept hit, which took minutes on a page with 100,000 matches).
    spans: list[tuple[int, int]] = []
    for hit in sorted(hits, key=lambda h: (-h.length, h.start)):
        key = (hit.entry.group, hit.start, hit.end)
        if key in seen:
            continue
        span = (hit.start, hit.end)
        before = bisect.bisect_left(spans, (hit.end, -1)) - 1
        clash = before >= 0 and spans[before] != span and spans[before][1] > hit.start
        if not clash:
            kept.append(hit)
            seen.add(key)
            if span not in spans[before : before + 1]:
                bisect.insort(spans, span)
    return sorted(kept, key=lambda h: (h.start, h.end, h.entry.group))
