"""What the bot says: Telegram HTML for each answer. Pure functions, no I/O.

Everything that comes from a page or a user is escaped: a post's text cannot inject markup.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import TYPE_CHECKING

from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut

from watcher.alert.console import format_summary
from watcher.models import CaptureStatus, CaptureSummary
from watcher.store.bot_state import TargetState
from watcher.store.db import TargetStatus
from watcher.store.links import ContactLink, PhotoLink
from watcher.store.search import SearchHit
from watcher.watchlist import Target

if TYPE_CHECKING:
    from watcher.bot.work import PhotoAnswer

TEXT_LIMIT = 4096
WORKING = "⏳ working…"
COMMANDS = (
    ("status", "targets, last captures, failures, alert backlog"),
    ("targets", "list the targets (optionally one tag): /targets TAG"),
    ("check", "capture a target now: /check NAME"),
    ("search", "search every stored post: /search TEXT"),
    ("similar", "reply to a photo: where has it been seen?"),
    ("links", "accounts linked by shared photos or contacts: /links NAME"),
    ("dealer", "dealers behind the accounts: /dealer, /dealer NAME"),
    ("evidence", "evidence bundle: /evidence CAPTURE_OR_POST_ID"),
    ("pause", "admins: stop capturing a target: /pause NAME [2h]"),
    ("resume", "admins: capture and alert again: /resume NAME"),
    ("watch", "admins: propose a new target: /watch URL [NAME]"),
    ("help", "what this bot can do"),
)


def e(value: object) -> str:
    """``value`` escaped for Telegram HTML."""
    return html.escape(str(value), quote=True)


def when(iso: str | None) -> str:
    """An ISO UTC time as ``2026-03-01 14:05 UTC`` (or ``never``)."""
    if not iso:
        return "never"
    return iso[:16].replace("T", " ") + " UTC"


def chunks(lines: Iterable[str], limit: int = TEXT_LIMIT) -> list[str]:
    """Lines joined into messages that each fit Telegram's limit (a line is never split
    unless it alone is too long, so HTML tags stay whole)."""
    messages: list[str] = []
    current = ""
    for line in lines:
        if len(line) > limit:
            line = e(html.unescape(_strip_tags(line)))[: limit - 1] + "…"
        if current and len(current) + 1 + len(line) > limit:
            messages.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
    if current:
        messages.append(current)
    return messages or ["(nothing)"]


def help_text() -> str:
    """The command list."""
    lines = ["<b>watcher bot</b>"]
    lines += [f"/{name} — {e(description)}" for name, description in COMMANDS]
    lines.append("Send or forward a photo in a private chat to see where it has been seen.")
    return "\n".join(lines)


def status_text(
    statuses: list[TargetStatus],
    states: dict[str, TargetState],
    backlog: dict[str, int],
    blocked: list[str],
    now: str,
) -> list[str]:
    """``/status``: every target's last capture and failures, blocked sessions, alert backlog."""
    failing = [s for s in statuses if s.failure_streak]
    paused = [n for n, st in states.items() if st.paused(now)]
    muted = [n for n, st in states.items() if st.muted(now)]
    lines = [
        f"<b>watcher status</b> · {len(statuses)} target{'s' * (len(statuses) != 1)}, "
        f"{len(failing)} failing, {len(paused)} paused, {len(muted)} muted"
    ]
    for status in statuses:
        lines.append(_status_line(status, states.get(status.name), now))
    lines.append("Blocked sessions: " + (", ".join(e(n) for n in blocked) if blocked else "none"))
    waiting, failed = backlog.get("pending", 0), backlog.get("failed", 0)
    lines.append(f"Alerts waiting: {waiting}; failed for good: {failed}")
    return chunks(lines)


def _status_line(status: TargetStatus, state: TargetState | None, now: str) -> str:
    if status.last_status is None:
        outcome = "not captured yet"
    elif status.last_status == CaptureStatus.OK:
        outcome = f"ok {when(status.last_capture_at)}"
    else:
        outcome = (
            f"⚠️ {e(status.last_status)} ({e(status.last_reason or '?')}) "
            f"{when(status.last_capture_at)}, {status.failure_streak} in a row"
        )
    marks = _marks(state, now)
    return (
        f"• <b>{e(status.name)}</b>{marks}: {outcome}; {status.live_posts} live, "
        f"{status.deleted_posts} deleted, {status.captures} captures"
    )


def _marks(state: TargetState | None, now: str) -> str:
    if state is None:
        return ""
    marks = []
    if state.paused(now):
        marks.append("⏸ paused" + _until(state.paused_until))
    if state.muted(now):
        marks.append("🔕 muted" + _until(state.muted_until))
    return f" ({', '.join(marks)})" if marks else ""


def _until(iso: str | None) -> str:
    return "" if not iso or iso.startswith("9999") else f" until {when(iso)}"


def targets_text(
    targets: list[Target], states: dict[str, TargetState], tag: str | None, now: str
) -> list[str]:
    """``/targets [TAG]``."""
    if not targets:
        return [f"No target has the tag {e(tag)}." if tag else "The watchlist has no targets."]
    title = f"<b>{len(targets)} target{'s' * (len(targets) != 1)}</b>"
    lines = [title + (f" tagged {e(tag)}" if tag else "")]
    for target in targets:
        tags = f" [{', '.join(e(t) for t in target.tags)}]" if target.tags else ""
        lines.append(
            f"• <b>{e(target.name)}</b> ({e(target.platform)}){tags}"
            f"{_marks(states.get(target.name), now)}: every {_duration(target.every)} · "
            f'<a href="{e(target.url)}">page</a>'
        )
    return chunks(lines)


def check_text(summary: CaptureSummary) -> str:
    """``/check``: the capture's outcome and what it found."""
    icon = "✅" if summary.status == CaptureStatus.OK else "⚠️"
    lines = [f"{icon} {e(format_summary(summary))}"]
    if summary.capture_id:
        lines.append(f"Evidence: /evidence {summary.capture_id}")
    return "\n".join(lines)


def search_text(query: str, hits: list[SearchHit], total: int) -> list[str]:
    """``/search``: matching posts, newest first, with links."""
    if not hits:
        return [f"Nothing stored matches <b>{e(query)}</b>."]
    shown = f"{len(hits)} newest of {total}" if total > len(hits) else str(total)
    lines = [f"<b>{shown} post{'s' * (total != 1)}</b> matching <b>{e(query)}</b>:"]
    for hit in hits:
        post = _post_link(hit.post_id, hit.permalink)
        gone = " 🗑 deleted" if hit.deleted else ""
        version = f" v{hit.version}" if hit.version > 1 or hit.edited_since else ""
        version += " (edited since)" if hit.edited_since else ""
        lines.append(
            f"• <b>{e(hit.target)}</b> {post}{version}{gone} · {when(hit.seen_at)} · "
            f"#{hit.capture_id}\n  {e(_excerpt(hit.text, 160))}"
        )
    return chunks(lines)


def similar_text(answer: PhotoAnswer) -> list[str]:
    """Where a photo has been seen: posts, targets and pHash distances (0 = identical), and
    the team's reference photos it matches."""
    references = [
        f"• reference photo <b>{e(known.name)}</b> · distance {distance}"
        for known, distance in answer.references
    ]
    if references:
        references.insert(0, "<b>Matches the team's reference photos:</b>")
    if not answer.matches:
        compared = answer.compared
        return [
            f"Not seen before: no stored photo is close to this one ({compared} compared).",
            *references,
        ]
    targets = sorted({post.target for post, _ in answer.matches})
    count = len(answer.matches)
    lines = [
        f"<b>Seen in {count} post{'s' * (count != 1)}</b> on "
        f"{', '.join(f'<b>{e(t)}</b>' for t in targets)} (distance 0 = same photo, up to 10 = "
        "resized, recompressed or watermarked copy):"
    ]
    for post, distance in answer.matches:
        gone = " 🗑 deleted" if post.deleted else ""
        lines.append(
            f"• <b>{e(post.target)}</b> {_post_link(post.post_id, post.permalink)}{gone} · "
            f"first seen {when(post.seen_at)} · capture #{post.capture_id} · "
            f"distance {distance}"
        )
    return chunks(lines + references)


def links_text(name: str, photo: list[PhotoLink], contacts: list[ContactLink]) -> list[str]:
    """``/links NAME``: accounts linked by shared photos and shared contacts."""
    lines = [f"<b>Accounts linked to {e(name)}</b>"]
    if photo:
        lines.append("By shared photos:")
        for link in photo:
            parts = []
            if theirs := link.reposted_from(name):
                parts.append(f"{theirs} of its photos were theirs first")
            if its := link.reposted_by(name):
                parts.append(f"{its} of theirs were its first")
            lines.append(
                f"• <b>{e(link.other(name))}</b>: {'; '.join(parts)} (last {when(link.last_at)})"
            )
    else:
        lines.append("No shared photos with another account.")
    if contacts:
        lines.append("By shared contacts:")
        lines += [f"• {e(_contact(link, name))}" for link in contacts]
    else:
        lines.append("No shared contacts.")
    return chunks(lines)


def _contact(link: ContactLink, name: str) -> str:
    """One shared contact as text: ``phone +855…: other-a, other-b``."""
    others = [t for t in link.targets if t != name]
    return (
        f"{link.kind} {link.value}: {', '.join(others)}" if others else f"{link.kind} {link.value}"
    )


def telegram_problem(exc: TelegramError) -> str:
    """A PTB error in plain words (the one place they are translated for the chat)."""
    if isinstance(exc, RetryAfter):
        return "Telegram asks the bot to slow down; try again in a minute."
    if isinstance(exc, TimedOut | NetworkError):
        return "Telegram did not answer in time; try again."
    if isinstance(exc, Forbidden):
        return "The bot is not allowed to write there (was it removed from the chat?)."
    if isinstance(exc, BadRequest):
        return f"Telegram refused the reply ({exc.message})."
    return f"Telegram failed ({type(exc).__name__})."


def _post_link(post_id: str, permalink: str | None) -> str:
    label = f"post {e(post_id)}"
    return f'<a href="{e(permalink)}">{label}</a>' if permalink else label


def _excerpt(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _strip_tags(text: str) -> str:
    import re

    return re.sub(r"<[^>]+>", "", text)


def dealers_text(found: list, went: dict) -> list[str]:
    """``/dealer``: every dealer with its accounts and strongest tie."""
    if not found:
        return ["No dealers yet: no accounts are tied by a shared contact, photos or forwards."]
    lines = [f"<b>{len(found)} dealer{'s' * (len(found) != 1)}</b>"]
    for dealer in found:
        lines.append(f"• <b>{e(dealer.name)}</b>: {_dealer_accounts(dealer, went)}")
    lines.append("One with its evidence: /dealer NAME")
    return chunks(lines)


def dealer_text(dealer, went: dict, can_judge: bool) -> list[str]:
    """``/dealer NAME``: its accounts and every tie with what the accounts share."""
    lines = [f"<b>Dealer {e(dealer.name)}</b>", _dealer_accounts(dealer, went)]
    for tie in dealer.ties:
        state = "joins" if tie.joins else "does not join"
        verdict = f", {e(tie.verdict)} by a person" if tie.verdict else ""
        lines.append(
            f"<code>{e(tie.id)}</code> {e(_account(tie.a))} ↔ {e(_account(tie.b))} "
            f"(weight {tie.weight:.2f}, {state}{verdict}): {e(tie.summary())}"
        )
    if can_judge:
        lines.append(
            f"Not one dealer? <code>/dealer {e(dealer.name)} reject TIE</code>; sure they are: "
            f"<code>/dealer {e(dealer.name)} confirm TIE</code>."
        )
    lines.append(f"Dossier: <code>watcher export --dealer {e(dealer.name)}</code> on the server.")
    return chunks(lines)


def _account(account: str) -> str:
    return account.removeprefix("author:") + (
        " (not watched)" if account.startswith("author:") else ""
    )


def _dealer_accounts(dealer, went: dict) -> str:
    shown = []
    for account in dealer.accounts:
        gone = went.get(account)
        mark = f" ({e(gone.how)} since {when(gone.since)})" if gone else ""
        shown.append(f"{e(_account(account))}{mark}")
    return ", ".join(shown)
