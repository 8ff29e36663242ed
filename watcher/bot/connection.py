"""The bot's connection to Telegram for the life of ``watcher run``: connect at start, and
when Telegram cannot be reached then, reconnect with backoff and attach the bot once it
answers. PTB's start-up errors become ours here (a refused token: ``WatcherError``; anything
else: ``TelegramUnreachable``, worth trying again).

Telegram being down does not stop the watching: captures run anyway, alerts wait in the
outbox, and the bot joins when Telegram answers. Only a refused token stops the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application, ApplicationBuilder

from watcher.bot.context import BotContext
from watcher.bot.service import serve_bot
from watcher.errors import TelegramUnreachable, WatcherError
from watcher.secrets import redact
from watcher.watchlist import Watchlist

log = logging.getLogger(__name__)

RECONNECT_FIRST_S = 2.0  # Telegram unreachable at start: first retry after this long,
RECONNECT_MAX_S = 300.0  # then doubling up to this
BOT_STOP_S = 10.0  # a bot still connecting or polling gets this long to stop at shutdown


def configured_api_url(watchlist: Watchlist) -> str | None:
    """The self-hosted Bot API server the watchlist names (None: Telegram's own)."""
    telegram = watchlist.alerts.telegram
    return telegram.api_url if telegram else None


@contextlib.asynccontextmanager
async def telegram_application(
    watchlist: Watchlist, token: str | None, api_url: str | None
) -> AsyncIterator[Application | None]:
    """The bot's Application, closed when the block ends; polling begins in :func:`attached_bot`.

    Connected (initialised and started) when Telegram answers at once; when it cannot be
    reached, one line says so and the Application comes unconnected (``running`` is false),
    for :func:`attached_bot` to connect later. None when Telegram is not configured or there is no
    token: alerts then stay on the console and in the outbox.

    Raises WatcherError when Telegram refuses the token: no retry can fix that.
    """
    if watchlist.alerts.telegram is None or not token:
        yield None
        return
    application = build_application(token, api_url)
    try:
        await _first_connection(application)
        yield application
    finally:
        await close_application(application)


def build_application(token: str, api_url: str | None) -> Application:
    """The bot's Application, not connected yet.

    Built without a JobQueue: PTB would start a second scheduler, and the daemon's own must
    run the captures whether or not Telegram answers.
    """
    builder = ApplicationBuilder().token(token).job_queue(None)
    if api_url:
        base = api_url.rstrip("/")
        builder = builder.base_url(f"{base}/bot").base_file_url(f"{base}/file/bot")
    return builder.build()


async def connect(application: Application) -> None:
    """Initialise (``getMe``) and start ``application``; PTB's errors become ours here.

    Raises WatcherError when Telegram refuses the token, TelegramUnreachable on any other
    failure (no network, a timeout, a server error, a rate limit): those pass.
    """
    try:
        await application.initialize()
    except InvalidToken:
        # PTB's message quotes the token: keep it out of the chain (and so of any traceback).
        raise WatcherError(
            "Telegram refused the bot token; check WATCHER_TELEGRAM_TOKEN (or the token file) "
            "holds the token @BotFather gave you"
        ) from None
    except TelegramError as exc:
        raise TelegramUnreachable(redact(f"{type(exc).__name__}: {exc.message}")) from exc
    await application.start()


async def close_application(application: Application) -> None:
    """Stop and shut down ``application``, whether it ever connected or not."""
    if application.running:
        await application.stop()
    await application.shutdown()
    # Application.shutdown skips an Application that never finished initialising, but the
    # failed attempts opened its bot's HTTP clients: close those too.
    await application.bot.shutdown()


async def _first_connection(application: Application) -> None:
    try:
        await connect(application)
    except TelegramUnreachable as exc:
        print(describe_outage(exc), flush=True)


def describe_outage(exc: TelegramUnreachable) -> str:
    """The line ``watcher run`` prints when Telegram cannot be reached at start."""
    return (
        f"Telegram is unreachable ({exc}); capturing anyway, alerts wait in the outbox until it "
        f"answers; retrying the connection in {RECONNECT_FIRST_S:g}s, backing off to every "
        f"{RECONNECT_MAX_S / 60:g} min"
    )


@contextlib.asynccontextmanager
async def attached_bot(
    application: Application | None, ctx: BotContext, on_connect: Callable[[], None]
) -> AsyncIterator[None]:
    """The chat bot on the daemon's Application, polling for the whole run (none without
    Telegram). ``ctx`` reads the daemon's app, so watchlist reloads reach it too.

    An Application that could not connect at start is connected by a background task, which
    calls ``on_connect`` and starts the bot once Telegram answers; shutdown cancels it
    wherever it is.
    """
    if application is None:
        yield
        return
    if application.running:
        async with serve_bot(application, ctx):
            yield
        return
    attach = asyncio.create_task(
        _attach_when_reachable(application, ctx, on_connect), name="telegram-bot"
    )
    attach.add_done_callback(_warn_if_bot_failed)
    try:
        yield
    finally:
        await _cancel_task(attach, BOT_STOP_S)


async def _attach_when_reachable(
    application: Application, ctx: BotContext, on_connect: Callable[[], None]
) -> None:
    """Connect with backoff; once Telegram answers, call ``on_connect`` and serve the bot
    until cancelled."""
    try:
        await _reconnect(application)
    except WatcherError as exc:  # the token was refused after all: retrying cannot fix that
        log.error("%s; the bot stays off until watcher is restarted", exc)
        return
    print("Telegram is reachable again: the bot is connected", flush=True)
    on_connect()
    async with serve_bot(application, ctx):
        await asyncio.Event().wait()  # shutdown cancels the task, which stops the bot


async def _reconnect(application: Application) -> None:
    """:func:`connect` until it succeeds, waiting 2 s, 4 s, 8 s, ... up to 5 min in between."""
    delay = RECONNECT_FIRST_S
    while True:
        await asyncio.sleep(delay)
        try:
            await connect(application)
        except TelegramUnreachable as exc:
            delay = min(delay * 2, RECONNECT_MAX_S)
            log.info("Telegram still unreachable (%s); next try in %.0fs", exc, delay)
        else:
            return


def _warn_if_bot_failed(task: asyncio.Task) -> None:
    # Captures and alerts do not need the bot; say at once that the chat commands are gone.
    if not task.cancelled() and task.exception() is not None:
        log.error("the Telegram bot stopped: %r; capturing and alerts go on", task.exception())


async def _cancel_task(task: asyncio.Task, timeout: float) -> None:
    """Cancel ``task`` and give it ``timeout`` to clean up: shutdown never waits longer."""
    task.cancel()
    await asyncio.wait({task}, timeout=timeout)
    if not task.done():
        log.warning(
            "%s did not stop within %ss; shutting down without it", task.get_name(), timeout
        )
