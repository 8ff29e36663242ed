"""Precision and recall of keyword matching on the labelled posts in the repository.

Each post in tests/fixtures/detection/labelled_posts.yaml lists the groups a reader would tag it
with; the matcher (default lexicon) gives the groups it found. Per group, a post counts as a
true positive, false positive or false negative; "overall" adds the counts of all groups.

Run: .venv/bin/python benchmarks/eval_detection.py
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from watcher.detect.keywords import KeywordMatcher, Lexicon

LABELLED = Path(__file__).resolve().parent.parent / "tests/fixtures/detection/labelled_posts.yaml"


@dataclass
class Counts:
    """True positives, false positives and false negatives of one group (or all)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class Miss:
    """A post the matcher got wrong for one group."""

    post_id: str
    group: str
    text: str
    found: list[str]  # the matched slices, for a false positive


@dataclass
class Evaluation:
    """Counts per group and overall, with every false positive and false negative."""

    groups: dict[str, Counts] = field(default_factory=dict)
    overall: Counts = field(default_factory=Counts)
    false_positives: list[Miss] = field(default_factory=list)
    false_negatives: list[Miss] = field(default_factory=list)
    posts: int = 0


def load_posts(path: Path = LABELLED) -> list[dict]:
    """The labelled posts."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))["posts"]


def evaluate(matcher: KeywordMatcher, posts: list[dict]) -> Evaluation:
    """Compare the matcher's groups with the labels, post by post."""
    result = Evaluation(posts=len(posts))
    for post in posts:
        matches = matcher.find(post["text"])
        found = {m.group for m in matches}
        expected = set(post["groups"])
        for group in found | expected:
            counts = result.groups.setdefault(group, Counts())
            if group in found and group in expected:
                counts.tp += 1
            elif group in found:
                counts.fp += 1
                slices = [m.text for m in matches if m.group == group]
                result.false_positives.append(Miss(post["id"], group, post["text"], slices))
            else:
                counts.fn += 1
                result.false_negatives.append(Miss(post["id"], group, post["text"], []))
    for counts in result.groups.values():
        result.overall.tp += counts.tp
        result.overall.fp += counts.fp
        result.overall.fn += counts.fn
    return result


def default_matcher() -> KeywordMatcher:
    """The matcher with the bundled lexicon only."""
    return KeywordMatcher(Lexicon.load({}, ["default"], Path.cwd()))


def report(result: Evaluation) -> str:
    """The evaluation as a text table followed by the errors."""
    lines = [
        f"{result.posts} labelled posts ({LABELLED.name})",
        "",
        f"{'group':<24} {'TP':>4} {'FP':>4} {'FN':>4} {'precision':>10} {'recall':>8} {'F1':>6}",
    ]
    rows = [*sorted(result.groups.items()), ("OVERALL", result.overall)]
    for name, c in rows:
        lines.append(
            f"{name:<24} {c.tp:>4} {c.fp:>4} {c.fn:>4} "
            f"{c.precision:>10.3f} {c.recall:>8.3f} {c.f1:>6.3f}"
        )
    lines += ["", f"False positives ({len(result.false_positives)}):"]
    lines += [f"  {m.post_id} [{m.group}] {m.found} in {m.text!r}" for m in result.false_positives]
    lines += ["", f"False negatives ({len(result.false_negatives)}):"]
    lines += [f"  {m.post_id} [{m.group}] {m.text!r}" for m in result.false_negatives]
    return "\n".join(lines)


def main() -> None:
    print(report(evaluate(default_matcher(), load_posts())))


if __name__ == "__main__":
    main()
