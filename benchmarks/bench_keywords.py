"""Keyword matching speed: the Aho-Corasick matcher with the full default lexicon against a
loop of compiled regular expressions (the same terms, re.IGNORECASE, on NFKC text).

The regex loop is the naive way to do it and does less: no look-alikes, split letters,
optional accents or exclusions. The matcher must still be at least 20 times faster. Both are
timed one post at a time, then on 20 and 1,000 posts per call (the matcher's ``find_many``;
the regex loop on the same posts joined), so each gets what batching gives it.

Run: .venv/bin/python benchmarks/bench_keywords.py [--posts 20000]
"""

from __future__ import annotations

import argparse
import random
import re
import time
import unicodedata
from pathlib import Path

from watcher.detect.keywords import KeywordMatcher, Lexicon
from watcher.detect.normalise import is_word_char

FILLER = str.split(
    "new stock today price inbox shipping fast good quality call me now sale discount "
    "hàng mới giá tốt liên hệ giao nhanh 今天 新货 私聊 价格 包邮 ใหม่ ราคา ส่งฟรี ទំនិញ ថ្មី "
    "bracelet beads carving antique old collection 100g 5kg 18k cheap original real "
    "dress shoes phone case coffee wine tea bag chair table ring necklace"
)


# Between words: mostly a space, sometimes punctuation, a line break, a blank line or a dash,
# as dealers lay out a post (most posts get a run of spaces once folded).
GAPS = (" ", ", ", ". ", "! ", "\n", "\n\n", " - ")
GAP_WEIGHTS = (80, 5, 3, 2, 4, 3, 3)


def generate_posts(count: int, lexicon: Lexicon, seed: int = 6) -> list[str]:
    """``count`` posts of 8-30 filler words; about one in ten carries a lexicon term."""
    rng = random.Random(seed)
    terms = [t.text for g in lexicon.groups.values() for t in g.terms]
    posts = []
    for _ in range(count):
        words = rng.choices(FILLER, k=rng.randint(8, 30))
        if rng.random() < 0.1:
            words.insert(rng.randrange(len(words)), rng.choice(terms))
        gaps = rng.choices(GAPS, GAP_WEIGHTS, k=len(words) - 1)
        posts.append("".join(w + g for w, g in zip(words, [*gaps, ""], strict=True)))
    return posts


def regex_loop(lexicon: Lexicon) -> list[re.Pattern[str]]:
    """One compiled pattern per term: whole word for spaced scripts, as-is otherwise."""
    patterns = []
    for group in lexicon.groups.values():
        for term in group.terms:
            text = unicodedata.normalize("NFKC", term.text)
            left = r"\b" if is_word_char(text[0]) else ""
            right = r"\b" if is_word_char(text[-1]) else ""
            patterns.append(re.compile(left + re.escape(text) + right, re.IGNORECASE))
    return patterns


def time_regex(
    patterns: list[re.Pattern[str]], posts: list[str], batch: int = 1
) -> tuple[float, int]:
    """CPU seconds for the regex loop over ``posts``, ``batch`` posts joined per pass."""
    start = time.process_time()
    found = 0
    for first in range(0, len(posts), batch):
        text = unicodedata.normalize("NFKC", "\n".join(posts[first : first + batch]))
        for pattern in patterns:
            for _match in pattern.finditer(text):
                found += 1
    return time.process_time() - start, found


def time_matcher(matcher: KeywordMatcher, posts: list[str], batch: int = 1) -> tuple[float, int]:
    """CPU seconds for the matcher over ``posts``: ``find`` per post, or ``find_many`` on
    ``batch`` posts at a time."""
    start = time.process_time()
    if batch == 1:
        found = sum(len(matcher.find(post)) for post in posts)
    else:
        found = sum(
            len(matches)
            for first in range(0, len(posts), batch)
            for matches in matcher.find_many(posts[first : first + batch])
        )
    return time.process_time() - start, found


# Posts per call: one at a time (``find``), a page of a first capture (``find_many``, as the
# pipeline calls it on a capture's new posts), and a thousand (a backfill).
BATCHES = ((1, "find, one post at a time"), (20, "find_many, 20 posts"), (1000, "find_many, 1,000"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=20_000)
    args = parser.parse_args()
    lexicon = Lexicon.load({}, ["default"], Path.cwd())
    start = time.perf_counter()
    matcher = KeywordMatcher(lexicon)
    build = time.perf_counter() - start
    patterns = regex_loop(lexicon)
    posts = generate_posts(args.posts, lexicon)
    matcher.find_many(posts[:20])  # warm the fold cache and the batch tables, as a running
    # watcher would be

    chars = sum(map(len, posts))
    print(f"{len(posts)} posts, {chars / len(posts):.0f} characters on average")
    print(
        f"lexicon: {len(lexicon.groups)} groups, {lexicon.term_count()} terms "
        f"(automaton built in {build * 1000:.0f} ms)"
    )
    print("| posts per call | watcher | regex loop (same posts per pass) | speed-up |")
    print("|---|---|---|---|")
    for batch, label in BATCHES:
        # CPU time of this process, best of three rounds taken in turn: on a shared machine
        # other work slows wall time unevenly, and a load change between the two would skew
        # the ratio.
        rounds = [
            (time_matcher(matcher, posts, batch), time_regex(patterns, posts, batch))
            for _ in range(3)
        ]
        ours, ours_found = min(r[0] for r in rounds)
        naive, naive_found = min(r[1] for r in rounds)
        print(
            f"| {label} | {len(posts) / ours:,.0f} posts per CPU-second ({ours_found} "
            f"matches) | {len(posts) / naive:,.0f} ({naive_found} matches) | "
            f"**{naive / ours:.1f}x** |"
        )


if __name__ == "__main__":
    main()
