"""``watcher probe URL --platform P``: what an adapter reads from a live page, for writing and
fixing recipes.

    watcher probe https://t.me/s/somechannel --platform telegram
    watcher probe https://shop.example/seller/1 --platform generic \\
        --selector post=.listing --selector id=@data-id --selector text=.desc --pages 2
    watcher probe https://www.facebook.com/somepage --platform facebook --session fb-puppet-1
    watcher probe https://shop.example/seller/1 --suggest --write lucky-shop

``--suggest`` finds the repeated item of an unknown listing page (an element repeated with
text, a link and an image), proposes a ``generic`` recipe for it and shows what it reads;
``--write NAME`` adds it to the watchlist as a new target (comments and layout kept).

Prints each post (id, time, author, the first 100 characters of its text, how many images)
and any block (login wall, checkpoint, ...). Nothing is stored. Exit 0 when posts were read
and nothing blocked the page, 2 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from watcher.app import resolve_data_dir
from watcher.bot.yaml_edit import NewTarget, add_target
from watcher.capture.adapters import Adapter, adapter_for, known_platforms
from watcher.capture.blocks import Block
from watcher.capture.browser import Browser
from watcher.capture.page import PageRequest, load_pages
from watcher.capture.recipe import RECIPE_FIELDS, Selector
from watcher.capture.sessions import Session, SessionStore
from watcher.capture.suggest import Suggestion, suggest_recipe
from watcher.commands import add_private_network_option
from watcher.errors import WatcherError
from watcher.models import Post
from watcher.watchlist import load_watchlist

TEXT_CHARS = 100


@dataclass(frozen=True)
class ProbeResult:
    """What the probe saw: where the browser ended up, the posts, and any block."""

    requested_url: str
    final_url: str
    posts: list[Post]
    block: Block | None

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` form: every post in full, and the block as reason + message."""
        return {
            "requested_url": self.requested_url,
            "final_url": self.final_url,
            "post_count": len(self.posts),
            "posts": [p.to_json() for p in self.posts],
            "block": {"reason": self.block.reason, "message": self.block.message}
            if self.block
            else None,
        }


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``watcher probe`` to the command line."""
    probe = sub.add_parser(
        "probe",
        parents=[common],
        help="show what an adapter extracts from a page (no storing)",
        description="Open a page and show the posts watcher reads from it, and any block; "
        "nothing is stored.",
        epilog="Examples:\n"
        "  watcher probe https://t.me/s/somechannel --platform telegram\n"
        "  watcher probe --target lucky-charms-store --selector text=.description",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    probe.add_argument(
        "url", metavar="URL", nargs="?", help="the page to open (default: the --target's URL)"
    )
    probe.add_argument(
        "--target",
        metavar="NAME",
        help="start from this watchlist target: its URL, platform, selectors, pages, session",
    )
    probe.add_argument("--platform", help=f"one of: {', '.join(known_platforms())}")
    probe.add_argument(
        "--selector",
        action="append",
        default=[],
        metavar="NAME=CSS",
        help=f"patch the recipe, e.g. text=.desc (names: {', '.join(RECIPE_FIELDS)})",
    )
    # No defaults here: an option not given keeps the --target's value (see `_settings`).
    probe.add_argument("--pages", type=int, help="pages to read (default 1)")
    probe.add_argument("--scroll", type=int, help="screens to scroll down")
    probe.add_argument("--next-page", help="selector of the next-page link")
    probe.add_argument("--load-more", help="selector of the load-more button")
    probe.add_argument("--session", help="open the page logged in as this session")
    probe.add_argument("--timeout", type=float, help="seconds (default 45)")
    probe.add_argument("--json", action="store_true", help="print one JSON object")
    add_private_network_option(probe, default=None)
    probe.add_argument(
        "--suggest",
        action="store_true",
        help="propose a generic recipe for an unknown listing page and show what it reads",
    )
    probe.add_argument(
        "--write",
        metavar="NAME",
        help="with --suggest: add the page to the watchlist as target NAME with that recipe",
    )


@dataclass(frozen=True)
class ProbeSettings:
    """What to open and how to read it: a watchlist target's settings, options on top."""

    url: str
    platform: str
    selectors: dict[str, str]
    pages: int = 1
    scroll: int = 0
    next_page: str | None = None
    load_more: str | None = None
    session: str | None = None
    timeout: float = 45.0
    allow_private_network: bool = False  # only as the watchlist's target says


def _settings(args: argparse.Namespace) -> ProbeSettings:
    """The --target's settings (if any) with every option given on the command line on top."""
    patch = parse_selectors(args.selector)
    if args.target:
        target = load_watchlist(args.watchlist).target(args.target)
        base = ProbeSettings(
            target.url,
            target.platform,
            dict(target.selectors),
            target.pages,
            target.scroll,
            target.next_page,
            target.load_more,
            target.session,
            target.timeout,
            target.allow_private_network,
        )
    elif args.url and getattr(args, "suggest", False):
        base = ProbeSettings(args.url, args.platform or "generic", {})
    elif not args.url or not args.platform:
        raise WatcherError(
            "say what to probe: a URL with --platform (e.g. watcher probe "
            "https://t.me/s/somechannel --platform telegram), or --target NAME from the watchlist"
        )
    else:
        base = ProbeSettings(args.url, args.platform, {})
    given = {
        "url": args.url,
        "platform": args.platform,
        "pages": args.pages,
        "scroll": args.scroll,
        "next_page": args.next_page,
        "load_more": args.load_more,
        "session": args.session,
        "timeout": args.timeout,
        "allow_private_network": args.allow_private_network,
    }
    chosen = replace(base, **{k: v for k, v in given.items() if v is not None})
    return replace(chosen, selectors={**chosen.selectors, **patch})


def cmd_probe(args: argparse.Namespace) -> int:
    """``watcher probe``: open the page, print what the adapter reads and any block."""
    if args.write and not args.suggest:
        raise WatcherError(
            "--write NAME goes with --suggest: watcher probe URL --suggest --write NAME"
        )
    settings = _settings(args)
    if args.suggest:
        return _cmd_suggest(args, settings)
    adapter = adapter_for(_platform(settings.platform), settings.selectors)
    request = PageRequest(
        url=settings.url,
        pages=max(1, settings.pages),
        timeout_s=settings.timeout,
        next_page=settings.next_page,
        load_more=settings.load_more,
        scroll=max(0, settings.scroll),
    )
    session = _session(args, settings.session)
    result = asyncio.run(probe(request, adapter, session, settings.allow_private_network))
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False, indent=1))
    else:
        print(format_result(result))
    return 0 if result.posts and result.block is None else 2


async def probe(
    request: PageRequest,
    adapter: Adapter,
    session: Session | None = None,
    allow_private_network: bool = False,
) -> ProbeResult:
    """Load the page(s) as a capture would and run the adapter's block detection."""
    async with Browser(max_concurrent=1) as browser:
        guard = browser.guard(allow_private_network)
        async with browser.context(session, guard) as context:
            snapshot, posts = await load_pages(
                context, request, adapter, browser.user_agent, browser.version
            )
    name = session.name if session else None
    block = adapter.detect_block(
        snapshot.html_pages[0], snapshot.final_url, request.url, posts, name
    )
    return ProbeResult(request.url, snapshot.final_url, posts, block)


def _cmd_suggest(args: argparse.Namespace, settings: ProbeSettings) -> int:
    """``--suggest``: load the page, propose a recipe, show what it reads, maybe write it."""
    request = PageRequest(url=settings.url, pages=1, timeout_s=settings.timeout)
    session = _session(args, settings.session)
    html, final_url = asyncio.run(_load_html(request, session, settings.allow_private_network))
    suggestion = suggest_recipe(html)
    if suggestion is None:
        print(
            f"{settings.url}: no repeated item with text and a link was found; the page may "
            "need a session or more time to load (--timeout), or it is not a listing"
        )
        return 2
    adapter = adapter_for("generic", suggestion.selectors)
    posts = adapter.extract(html, final_url)
    result = ProbeResult(settings.url, final_url, posts, None)
    if args.json:
        print(
            json.dumps(
                {"selectors": suggestion.selectors, "why": suggestion.why, **result.to_json()},
                ensure_ascii=False,
                indent=1,
            )
        )
    else:
        print(format_suggestion(suggestion))
        print(format_result(result))
    if args.write and posts:
        target = NewTarget(args.write, "generic", settings.url, suggestion.selectors)
        add_target(Path(args.watchlist), target)
        print(f"added target {args.write} to {args.watchlist}")
    elif args.write:
        print(f"not added: the suggested recipe reads no posts from {settings.url}")
    return 0 if posts else 2


async def _load_html(
    request: PageRequest, session: Session | None, allow_private_network: bool
) -> tuple[str, str]:
    """The rendered HTML of the first page and where the browser ended up."""
    async with Browser(max_concurrent=1) as browser:
        guard = browser.guard(allow_private_network)
        async with browser.context(session, guard) as context:
            snapshot, _posts = await load_pages(
                context, request, adapter_for("generic"), browser.user_agent, browser.version
            )
    return snapshot.html_pages[0], snapshot.final_url


def format_suggestion(suggestion: Suggestion) -> str:
    """The proposed recipe as the watchlist's ``selectors:`` block, and why."""
    lines = [f"suggested recipe ({suggestion.why}):", "    selectors:"]
    lines += [
        f"      {name}: {json.dumps(css, ensure_ascii=False)}"
        for name, css in suggestion.selectors.items()
    ]
    return "\n".join(lines)


def format_result(result: ProbeResult) -> str:
    """Plain lines: one per post, then the block or a count."""
    lines = [f"{result.requested_url} -> {result.final_url}"]
    for post in result.posts:
        text = " ".join(post.text.split())
        short = text if len(text) <= TEXT_CHARS else text[:TEXT_CHARS] + "…"
        lines.append(
            f"- {post.post_id} | {post.posted_at or 'no time'} | {post.author or 'no author'}"
            f" | {len(post.image_urls)} image(s) | {short!r}"
        )
    lines.append(f"{len(result.posts)} post(s)")
    if result.block:
        lines.append(f"BLOCKED ({result.block.reason}): {result.block.message}")
    elif not result.posts:
        lines.append("no posts: check the `post` and `id` selectors against the page")
    return "\n".join(lines)


def parse_selectors(values: list[str]) -> dict[str, str]:
    """``["text=.desc", "id=@data-id"]`` as a recipe patch; WatcherError naming the fix."""
    patch: dict[str, str] = {}
    for value in values:
        name, sep, css = value.partition("=")
        name = name.strip()
        if not sep or not css.strip():
            raise WatcherError(f"--selector {value!r}: write NAME=CSS, e.g. --selector text=.desc")
        if name not in RECIPE_FIELDS:
            raise WatcherError(
                f"--selector {value!r}: unknown name {name!r}; "
                f"use one of {', '.join(RECIPE_FIELDS)}"
            )
        Selector.parse(css)
        patch[name] = css.strip()
    return patch


def _platform(name: str) -> str:
    if name not in known_platforms():
        raise WatcherError(f"unknown platform {name!r}: use one of {', '.join(known_platforms())}")
    return name


def _session(args: argparse.Namespace, name: str | None) -> Session | None:
    """The named session (cookies and browser profile), or None for an anonymous probe."""
    if not name:
        return None
    store = SessionStore(resolve_data_dir(Path(args.watchlist), args.data))
    return store.load(name)


COMMANDS = {"probe": cmd_probe}


def main(argv: list[str] | None = None) -> int:
    """Run ``probe`` on its own (``python -m watcher.commands.probe URL --platform P``)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--watchlist", default="watchlist.yaml")
    common.add_argument("--data", default=None)
    common.add_argument("--debug", action="store_true")
    parser = argparse.ArgumentParser(prog="watcher")
    sub = parser.add_subparsers(dest="command", required=True)
    add_commands(sub, common)
    args = parser.parse_args(["probe", *(sys.argv[1:] if argv is None else argv)])
    try:
        return cmd_probe(args)
    except WatcherError as exc:
        print(f"watcher: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
