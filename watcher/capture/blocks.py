"""Recognise the pages a platform shows instead of content: login walls, checkpoints, bans,
removed content, geo-blocks, CAPTCHAs.

An adapter that silently returns nothing is the worst failure a watch tool can have: the team
believes a dealer went quiet when watcher was in fact shut out. So every adapter runs
:func:`find_block` over what it loaded, with its own :class:`BlockRule` list on top of the
generic ones here, and a :class:`Block` names the cause and what the team must do.

Detection is pure (HTML and URLs in, a Block out) so it is tested on saved pages.
:func:`dismiss_consent` is the one browser-side helper: cookie banners hide the page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from selectolax.lexbor import LexborHTMLParser

from watcher.models import Post

REASONS = (
    "login_wall",
    "checkpoint",
    "temporarily_blocked",
    "content_unavailable",
    "geo_blocked",
    "captcha",
    "no_preview",
    "empty_after_posts",
    "no_posts_read",
)


@dataclass(frozen=True)
class Block:
    """Why a page shows no content, and what the team must do about it, in plain words."""

    reason: str  # one of REASONS
    message: str

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"unknown block reason {self.reason!r}; use one of {REASONS}")


@dataclass(frozen=True)
class BlockRule:
    """One sign of a block: any of its URL path parts, page phrases or CSS selectors.

    ``always``: the sign counts even when posts were read (a redirect to /checkpoint/ is a
    block whatever else is on the page). Otherwise it counts only on a page without posts,
    because a dealer's post may well quote "log in" or "temporarily blocked".
    """

    reason: str
    paths: tuple[str, ...] = ()  # substrings of the final URL's path (lower case)
    phrases: tuple[str, ...] = ()  # substrings of the page text (lower case, straight quotes)
    selectors: tuple[str, ...] = ()  # CSS that only a block page has
    always: bool = False


@dataclass(frozen=True)
class BlockContext:
    """What a block message needs: the platform's name, the session and where to log in."""

    platform: str  # "Facebook", "VK", "Telegram", "The site"
    session: str | None
    login_url: str
    requested_url: str


# Generic signs, tried after a platform's own rules. Login and challenge URLs are signs even
# with posts on the page: the platform sent us away from what we asked for.
GENERIC_RULES: tuple[BlockRule, ...] = (
    BlockRule("checkpoint", paths=("/checkpoint", "/challenge/", "/account_locked"), always=True),
    BlockRule(
        "captcha",
        paths=("/captcha", "/cdn-cgi/challenge-platform", "/sorry/"),
        selectors=(
            'iframe[src*="recaptcha"]',
            'iframe[src*="hcaptcha"]',
            'iframe[src*="challenges.cloudflare.com"]',
            ".g-recaptcha",
            ".h-captcha",
            ".cf-turnstile",
            "#challenge-form",
            "#cf-challenge-running",
            "form#challenge-form",
        ),
        phrases=(
            "verify you are human",
            "checking your browser before accessing",
            "are you a robot",
            "i'm not a robot",
            "enter the characters you see",
        ),
    ),
    BlockRule(
        "login_wall",
        paths=("/login", "/signin", "/sign-in", "/accounts/login", "/auth/"),
        always=True,
    ),
    BlockRule(
        "login_wall",
        selectors=(
            'form input[type="password"]',
            'form[action*="login"]',
            'form[action*="signin"]',
        ),
        phrases=("log in to continue", "sign in to continue", "you must log in"),
    ),
    BlockRule(
        "geo_blocked",
        phrases=(
            "not available in your country",
            "isn't available in your country",
            "not available in your region",
            "unavailable in your country",
            "unavailable in your region",
            "blocked in your country",
            "withheld in your country",
        ),
    ),
    BlockRule(
        "temporarily_blocked",
        phrases=("too many requests", "you have been temporarily blocked", "rate limit exceeded"),
    ),
)

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u00a0": " "})
_SPACES = re.compile(r"\s+")


def find_block(
    html: str,
    final_url: str,
    requested_url: str,
    posts: Sequence[Post],
    rules: Sequence[BlockRule],
    context: BlockContext,
) -> Block | None:
    """The first rule (platform rules first, then :data:`GENERIC_RULES`) the page matches."""
    requested_path = urlsplit(requested_url).path.lower()
    final_path = urlsplit(final_url).path.lower()
    tree = LexborHTMLParser(html or "<html></html>")
    text: str | None = None  # page text, computed only when a phrase rule needs it
    for rule in (*rules, *GENERIC_RULES):
        if posts and not rule.always:
            continue
        # Asking for a login page is not being sent to one.
        if any(p in final_path and p not in requested_path for p in rule.paths):
            return block_for(rule.reason, context)
        if any(tree.css_first(css) is not None for css in rule.selectors):
            return block_for(rule.reason, context)
        if rule.phrases:
            text = text if text is not None else page_text(tree)
            if any(phrase in text for phrase in rule.phrases):
                return block_for(rule.reason, context)
    return None


def page_text(tree: LexborHTMLParser) -> str:
    """Visible text of the page (and its title), lower case, quotes straightened."""
    for node in tree.css("script, style, noscript, template"):
        node.decompose()
    title = tree.css_first("title")
    body = tree.body.text(separator=" ") if tree.body else ""
    text = f"{title.text() if title else ''} {body}"
    return _SPACES.sub(" ", text.translate(_QUOTES)).lower()


# -- messages ------------------------------------------------------------------------------
def block_for(reason: str, context: BlockContext) -> Block:
    """A :class:`Block` with the message for ``reason`` filled in for this platform/session."""
    return Block(reason, _MESSAGES[reason](context))


def _login_command(ctx: BlockContext) -> str:
    name = ctx.session or "NAME"
    return f"`watcher session login {name} --url {ctx.login_url}`"


def _login_wall(ctx: BlockContext) -> str:
    if ctx.session:
        return (
            f"{ctx.platform} shows a login wall: the session '{ctx.session}' is logged out; "
            f"run {_login_command(ctx)}"
        )
    return (
        f"{ctx.platform} shows a login wall and this target has no session: add "
        f"`session: NAME` to the target and run {_login_command(ctx)}"
    )


def _checkpoint(ctx: BlockContext) -> str:
    who = f"the account of session '{ctx.session}'" if ctx.session else "the account in use"
    return (
        f"{ctx.platform} stopped {who} at a security checkpoint (account locked or identity "
        f"check): log in by hand with {_login_command(ctx)}, clear the check, and do not "
        "capture this target again until it is cleared"
    )


def _temporarily_blocked(ctx: BlockContext) -> str:
    who = f"the session '{ctx.session}'" if ctx.session else "watcher"
    return (
        f'{ctx.platform} has temporarily blocked {who} ("You\'re Temporarily Blocked" / '
        '"You can\'t use this feature right now"): wait at least a day before the next '
        "capture, then capture less often (raise `every:`) and read fewer pages"
    )


def _content_unavailable(ctx: BlockContext) -> str:
    who = f"logged in as '{ctx.session}'" if ctx.session else "without a session"
    return (
        f"{ctx.platform} says this content isn't available: it was removed or made private, "
        f"or the account was blocked by its owner. Open {ctx.requested_url} in a browser "
        f"{who} to check, and note the time for the case file"
    )


def _geo_blocked(ctx: BlockContext) -> str:
    return (
        f"{ctx.platform} withholds {ctx.requested_url} in the country watcher connects from: "
        "capture it through a connection in another country, or ask the platform for the "
        "content through legal channels"
    )


def _captcha(ctx: BlockContext) -> str:
    return (
        f"{ctx.platform} asks for a CAPTCHA before showing {ctx.requested_url}: solve it by hand "
        f"with {_login_command(ctx)}, then capture less often (raise `every:`)"
    )


def _no_preview(ctx: BlockContext) -> str:
    return (
        f"{ctx.platform} shows no public preview of {ctx.requested_url} (it redirects to the "
        "channel's info page): the owner turned the web preview off, or the channel is private "
        "or gone. watcher cannot read it: watch it from a Telegram account instead"
    )


def _empty_after_posts(ctx: BlockContext) -> str:
    return (
        f"{ctx.platform} shows no posts at {ctx.requested_url} where posts were seen before: "
        "watcher is probably shut out (logged out, blocked) rather than the account gone "
        f"quiet. Open the page by hand to check; if it asks to log in, run {_login_command(ctx)}"
    )


def _no_posts_read(ctx: BlockContext) -> str:
    return (
        f"watcher read no posts at {ctx.requested_url}, a {ctx.platform} feed, and the page "
        "names no block: either the page did not show its posts (not rendered, or a layout "
        "watcher does not know) or the session sees nothing. Open the page by hand with the "
        "session; if posts show there, the layout changed: run watcher probe on it and fix the "
        f"target's selectors. If it asks to log in, run {_login_command(ctx)}"
    )


_MESSAGES: dict[str, Callable[[BlockContext], str]] = {
    "login_wall": _login_wall,
    "checkpoint": _checkpoint,
    "temporarily_blocked": _temporarily_blocked,
    "content_unavailable": _content_unavailable,
    "geo_blocked": _geo_blocked,
    "captcha": _captcha,
    "no_preview": _no_preview,
    "empty_after_posts": _empty_after_posts,
    "no_posts_read": _no_posts_read,
}
