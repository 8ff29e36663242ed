"""The bot's handlers: each command, photos, and button presses.

Every request goes through :meth:`WatcherBot.guarded`: the access check (user and chat), the
size check, the request log (``bot_log``: who asked what, when, and how it ended), and the
one place errors become plain words. Slow work (a capture, an export) first answers
'working…' and edits that message when done; its handler runs without blocking the others.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from telegram import (
    Bot,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    Update,
    User,
)
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from watcher.bot import replies
from watcher.bot.access import ADMIN_ONLY, Decision, Role, check
from watcher.bot.buttons import (
    AlertPress,
    Proposal,
    TiePress,
    WatchPress,
    confirm_keyboard,
    parse_callback,
    tie_keyboard,
    without_button,
)
from watcher.bot.context import BotContext
from watcher.bot.replies import WORKING, e
from watcher.bot.work import (
    EvidenceRequest,
    build_bundles,
    evidence_request,
    in_seconds,
    photo_seen,
    until_after,
)
from watcher.bot.yaml_edit import NewTarget, add_target, propose
from watcher.detect.dealers import Rules
from watcher.errors import WatcherError
from watcher.evidence.bundle import Selection
from watcher.models import CaptureStatus, Event
from watcher.store import bot_state as queries
from watcher.store import dealers as dealer_store
from watcher.store import links
from watcher.store.db import Store
from watcher.store.search import search_posts
from watcher.timeutil import utc_now

log = logging.getLogger(__name__)

MAX_INPUT_CHARS = 1000  # a command longer than this is refused unread
MAX_PHOTO_BYTES = 20_000_000  # the most a bot may download from Telegram
MUTE_S = 24 * 3600
UPLOAD_TIMEOUT_S = 600.0
SELF_HOSTED_HINT = (
    " A self-hosted Bot API server (alerts.telegram.api_url) lifts the limit to 2 GB."
)
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


@dataclass(slots=True)
class Request:
    """One allowed request: who, where, what, and how to answer."""

    bot: Bot
    message: Message
    user: User
    chat_id: int
    role: Role
    args: list[str]

    async def reply(self, html: str, markup: InlineKeyboardMarkup | None = None) -> Message:
        """Send ``html`` to the chat the request came from."""
        return await self.bot.send_message(
            self.chat_id,
            html,
            parse_mode=ParseMode.HTML,
            link_preview_options=_NO_PREVIEW,
            reply_markup=markup,
        )

    async def reply_all(self, messages: list[str]) -> None:
        """Send several messages in order (a long answer split to Telegram's limit)."""
        for html in messages:
            await self.reply(html)


Body = Callable[[Request], Awaitable[str]]  # returns a short result for the request log


class WatcherBot:
    """The handlers, bound to one running watcher."""

    def __init__(self, ctx: BotContext) -> None:
        self.ctx = ctx

    @property
    def store(self) -> Store:
        return self.ctx.app.store

    # -- the guard every request passes ----------------------------------------------------
    def guarded(self, name: str, need: Role, body: Body) -> Callable[..., Awaitable[None]]:
        """A PTB callback running ``body`` for allowed users, refusing everyone else."""

        async def handle(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            message, chat, user = (
                update.effective_message,
                update.effective_chat,
                update.effective_user,
            )
            if message is None or chat is None:
                return
            user_id = user.id if user else None
            decision = self.decide(update, need)
            if not decision.allowed:
                await self.refuse(context.bot, chat.id, user_id, name, decision)
                return
            assert user is not None
            args = list(context.args or [])
            request = Request(context.bot, message, user, chat.id, decision.role, args)
            await self.run(name, request, body)

        return handle

    def decide(self, update: Update, need: Role) -> Decision:
        """Access (user and chat) first, so a stranger learns nothing; then the size."""
        chat, user, message = update.effective_chat, update.effective_user, update.effective_message
        assert chat is not None and message is not None
        decision = check(self.ctx.watchlist, user.id if user else None, chat.id, chat.type, need)
        size = len(message.text or message.caption or "")
        if decision.allowed and size > MAX_INPUT_CHARS:
            reply = f"That message is too long ({size} characters; at most {MAX_INPUT_CHARS})."
            return Decision(False, decision.role, reply, "message too long")
        return decision

    async def run(self, name: str, request: Request, body: Body) -> None:
        """Run an allowed request; log it; explain any failure in plain words."""
        args = " ".join(request.args)
        try:
            result = await body(request)
        except WatcherError as exc:
            self.record(request, name, args, "error", str(exc))
            await self.say(request, f"⚠️ {e(exc)}")
        except TelegramError as exc:
            log.warning("/%s: Telegram failed: %s", name, exc)
            self.record(request, name, args, "error", f"telegram: {exc}")
            await self.say(request, f"⚠️ {e(replies.telegram_problem(exc))}")
        except Exception:
            log.exception("/%s failed", name)
            self.record(request, name, args, "error", "unexpected error (see the server log)")
            await self.say(
                request, "⚠️ Something went wrong on the server (it is logged); try again."
            )
        else:
            # A body that declines (a forged button, a used proposal) says so in its result.
            outcome = "refused" if result.startswith("refused") else "ok"
            self.record(request, name, args, outcome, result)

    async def refuse(
        self, bot: Bot, chat_id: int, user_id: int | None, name: str, decision: Decision
    ) -> None:
        """Refuse briefly (strangers once a minute at most), log it (bounded: see
        :func:`~watcher.store.bot_state.log_refusal`), and reveal nothing."""
        reason = decision.reason
        try:
            own_row = queries.log_refusal(self.store, user_id, chat_id, name, reason)
        except WatcherError as exc:
            log.error("cannot record a bot request: %s", exc)
            own_row = True
        if own_row:  # past the bound, the server log stays quiet too: the count is in bot_log
            log.warning("refused %s from user %s in chat %s: %s", name, user_id, chat_id, reason)
        if decision.role == Role.NONE and not self.ctx.refusals.should_answer(user_id, chat_id):
            return
        with contextlib.suppress(TelegramError):
            await bot.send_message(chat_id, e(decision.reply), parse_mode=ParseMode.HTML)

    async def say(self, request: Request, html: str) -> None:
        """Best-effort reply (used to report errors: a failing reply must not raise again)."""
        try:
            await request.reply(html)
        except TelegramError as exc:
            log.warning("cannot reply in chat %s: %s", request.chat_id, exc)

    def record(self, request: Request, name: str, args: str, result: str, detail: str) -> None:
        """One ``bot_log`` row for this request."""
        self.safe_log(request.user.id, request.chat_id, name, args, result, detail)

    def safe_log(
        self, user_id: int | None, chat_id: int, name: str, args: str, result: str, detail: str
    ) -> None:
        """Write the request log; a failing database is logged, never shown to the chat."""
        try:
            queries.log_request(self.store, user_id, chat_id, name, args, result, detail)
        except WatcherError as exc:
            log.error("cannot record a bot request: %s", exc)

    # -- read and search (members) ---------------------------------------------------------
    async def help(self, request: Request) -> str:
        await request.reply(replies.help_text())
        return "help"

    async def status(self, request: Request) -> str:
        targets = self.ctx.watchlist.targets
        statuses = [self.store.target_status(t.name, t.platform) for t in targets]
        blocked = [s.name for s in statuses if s.last_status == CaptureStatus.BLOCKED]
        await request.reply_all(
            replies.status_text(
                statuses,
                queries.target_states(self.store),
                self.store.outbox_backlog(),
                blocked,
                utc_now(),
            )
        )
        return f"{len(statuses)} targets"

    async def targets(self, request: Request) -> str:
        tag = request.args[0] if request.args else None
        chosen = [t for t in self.ctx.watchlist.targets if tag is None or tag in t.tags]
        states = queries.target_states(self.store)
        await request.reply_all(replies.targets_text(chosen, states, tag, utc_now()))
        return f"{len(chosen)} targets"

    async def check(self, request: Request) -> str:
        target = self.ctx.watchlist.target(self._one_arg(request, "/check NAME"))
        working = await request.reply(f"{WORKING} capturing <b>{e(target.name)}</b>")
        summary = await self.ctx.capture(target)
        await working.edit_text(
            replies.check_text(summary), parse_mode=ParseMode.HTML, link_preview_options=_NO_PREVIEW
        )
        return f"{summary.status} capture #{summary.capture_id}"

    async def search(self, request: Request) -> str:
        query = " ".join(request.args).strip()
        if not query:
            raise WatcherError("say what to look for: /search white gold")
        hits, total = search_posts(self.store, query)
        await request.reply_all(replies.search_text(query, hits, total))
        return f"{total} posts"

    async def links(self, request: Request) -> str:
        name = self._one_arg(request, "/links NAME")
        if name not in {t.name for t in self.ctx.watchlist.targets} and not self.store.last_capture(
            name
        ):
            self.ctx.watchlist.target(name)  # raises, naming the known targets
        photo = links.photo_links(self.store, name)
        contacts = links.shared_contacts(self.store, name)
        await request.reply_all(replies.links_text(name, photo, contacts))
        return f"{len(photo)} photo links"

    async def dealer(self, request: Request) -> str:
        """``/dealer`` lists the dealers; ``/dealer NAME`` shows one; an admin's
        ``/dealer NAME confirm|reject TIE`` keeps their word on a tie."""
        rules = Rules(common_after=self.ctx.watchlist.dealers.common_after)
        if not request.args:
            found = dealer_store.dealers(self.store, rules)
            await request.reply_all(replies.dealers_text(found, self._went(found)))
            return f"{len(found)} dealers"
        dealer = dealer_store.find_dealer(self.store, request.args[0], rules)
        if len(request.args) == 3 and request.args[1] in dealer_store.VERDICTS_SAID:
            if request.role < Role.ADMIN:
                await request.reply(e(ADMIN_ONLY))
                return "refused: confirm/reject needs an admin"
            tie = dealer_store.find_tie(dealer, request.args[2])
            verdict = dealer_store.VERDICTS_SAID[request.args[1]]
            dealer_store.record_verdict(self.store, tie, verdict, f"telegram:{request.user.id}")
            await request.reply(
                f"Tie <code>{e(tie.id)}</code> ({e(tie.a)} ↔ {e(tie.b)}) {verdict} by "
                f"{e(request.user.full_name)}; kept for good."
            )
            return f"{verdict} {tie.id}"
        if len(request.args) != 1:
            raise WatcherError("use /dealer, /dealer NAME or /dealer NAME reject TIE")
        await self._show_dealer(request, dealer)
        return f"dealer {dealer.name}"

    async def _show_dealer(self, request: Request, dealer) -> None:
        admin = request.role >= Role.ADMIN
        text = replies.dealer_text(dealer, self._went([dealer]), admin)
        await request.reply_all(text)
        markup = tie_keyboard(list(dealer.ties)) if admin else None
        if markup is not None:
            await request.reply(f"Your word on the ties of <b>{e(dealer.name)}</b>:", markup)

    async def _tie_press(self, request: Request, query: CallbackQuery, press: TiePress) -> str:
        rules = Rules(common_after=self.ctx.watchlist.dealers.common_after)
        tie = next((t for t in dealer_store.all_ties(self.store, rules) if t.id == press.tie), None)
        if tie is None:
            await query.answer("This tie is not in the archive.")
            return "refused: unknown tie"
        verdict = "confirmed" if press.confirm else "rejected"
        dealer_store.record_verdict(self.store, tie, verdict, f"telegram:{request.user.id}")
        await query.answer(f"Tie {verdict}")
        await request.reply(
            f"Tie <code>{e(tie.id)}</code> ({e(tie.a)} ↔ {e(tie.b)}) {verdict} by "
            f"{e(request.user.full_name)}; kept for good."
        )
        return f"{verdict} {tie.id}"

    def _went(self, found: list) -> dict:
        now = utc_now()
        silent = self.ctx.watchlist.dealers.silent_after
        return {a: dealer_store.gone(self.store, a, now, silent) for d in found for a in d.accounts}

    async def _dealer_press(self, request: Request, query: CallbackQuery, event: Event) -> str:
        account = getattr(event.payload, "account", "") or event.target
        rules = Rules(common_after=self.ctx.watchlist.dealers.common_after)
        found = [d for d in dealer_store.dealers(self.store, rules) if account in d.accounts]
        await query.answer()
        if not found:
            await request.reply(
                f"<b>{e(account)}</b> is not part of a dealer yet: what ties it to other "
                f"accounts is too weak so far (see /links {e(account)})."
            )
            return f"no dealer for {account}"
        await self._show_dealer(request, found[0])
        return f"dealer {found[0].name}"

    async def evidence(self, request: Request) -> str:
        wanted = evidence_request(self.ctx.app, " ".join(request.args))
        return await self.send_evidence(request, wanted)

    async def send_evidence(self, request: Request, wanted: EvidenceRequest) -> str:
        """Build the bundle(s), send what fits, say where the rest is on the server."""
        working = await request.reply(
            f"{WORKING} building the evidence bundle for {e(wanted.label)}"
        )
        paths = await build_bundles(self.ctx.app, wanted, self.ctx.exports_dir, self.ctx.max_upload)
        lines = [
            f"📦 Evidence for {e(wanted.label)}: {len(paths)} bundle{'s' * (len(paths) != 1)}."
        ]
        for number, path in enumerate(paths, start=1):
            lines.append(await self._deliver_bundle(request, path, number, len(paths)))
        # The fingerprint in this chat is for the team; a prosecutor gets it out of band.
        lines.append(
            "Check a bundle with: <code>watcher verify FILE --key "
            f"{e(self.ctx.app.custody.key.fingerprint)}</code>"
        )
        await working.edit_text("\n".join(lines), parse_mode=ParseMode.HTML)
        return ", ".join(p.name for p in paths)

    async def _deliver_bundle(self, request: Request, path: Path, number: int, count: int) -> str:
        size = path.stat().st_size
        part = f"Part {number} of {count}" if count > 1 else "The bundle"
        if size > self.ctx.max_upload:
            hint = "" if self.ctx.self_hosted else SELF_HOSTED_HINT
            return (
                f"{part} ({_mb(size)}) is over the {_mb(self.ctx.max_upload)} a bot may send; "
                f"it is on the server at <code>{e(path)}</code>.{hint}"
            )
        with path.open("rb") as handle:
            await request.bot.send_document(
                request.chat_id,
                handle,
                filename=path.name,
                caption=f"{part}: {path.name} ({_mb(size)})",
                write_timeout=UPLOAD_TIMEOUT_S,
                read_timeout=UPLOAD_TIMEOUT_S,
            )
        return f"{part} sent: <code>{e(path.name)}</code> ({_mb(size)})."

    async def similar(self, request: Request) -> str:
        source = request.message.reply_to_message
        data = await self._image_of(request, source) if source else None
        if data is None:
            raise WatcherError("reply /similar to a photo (or send me the photo in a private chat)")
        return await self._answer_similar(request, data)

    async def photo(self, request: Request) -> str:
        data = await self._image_of(request, request.message)
        if data is None:
            raise WatcherError("send the picture as a photo or an image file")
        return await self._answer_similar(request, data)

    async def _answer_similar(self, request: Request, data: bytes) -> str:
        answer = await photo_seen(self.ctx.app, data)
        await request.reply_all(replies.similar_text(answer))
        return f"{len(answer.matches)} matches"

    async def _image_of(self, request: Request, message: Message) -> bytes | None:
        """The bytes of the photo (largest size) or image file in ``message``; None if none."""
        if message.photo:
            item = message.photo[-1]
        elif message.document and (message.document.mime_type or "").startswith("image/"):
            item = message.document
        else:
            return None
        if (item.file_size or 0) > MAX_PHOTO_BYTES:
            raise WatcherError(
                f"that picture is too large ({_mb(item.file_size or 0)}; at most 20 MB)"
            )
        file = await request.bot.get_file(item.file_id)
        data = bytes(await file.download_as_bytearray())
        if len(data) > MAX_PHOTO_BYTES:
            raise WatcherError("that picture is too large (at most 20 MB)")
        return data

    async def unknown(self, request: Request) -> str:
        await request.reply("I don't know that command; /help lists what I can do.")
        return "unknown command"

    async def chat_text(self, request: Request) -> str:
        await request.reply("Send a command (/help lists them), or a photo to look it up.")
        return "hint"

    # -- changes (admins) ------------------------------------------------------------------
    async def pause(self, request: Request) -> str:
        if not request.args or len(request.args) > 2:
            raise WatcherError("say which target and, if you like, for how long: /pause NAME 2h")
        target = self.ctx.watchlist.target(request.args[0])
        until = until_after(request.args[1] if len(request.args) > 1 else None)
        queries.set_paused(self.store, target.name, until or queries.FOREVER, request.user.id)
        self._custody("target_paused", target.name, {"until": until, "by": request.user.id})
        when = f"until {replies.when(until)}" if until else "until /resume"
        await request.reply(
            f"⏸ <b>{e(target.name)}</b> paused {when}: no scheduled captures. "
            f"/resume {e(target.name)} to undo."
        )
        return f"paused {when}"

    async def resume(self, request: Request) -> str:
        target = self.ctx.watchlist.target(self._one_arg(request, "/resume NAME"))
        queries.set_paused(self.store, target.name, None, request.user.id)
        queries.set_muted(self.store, target.name, None, request.user.id)
        self._custody("target_resumed", target.name, {"by": request.user.id})
        await request.reply(f"▶️ <b>{e(target.name)}</b> resumed: captured and alerted again.")
        return "resumed"

    async def watch(self, request: Request) -> str:
        if not request.args or len(request.args) > 2:
            raise WatcherError(
                "send /watch URL [NAME], e.g. /watch https://t.me/somechannel dealer"
            )
        url, name = request.args[0], (request.args[1] if len(request.args) > 1 else None)
        new = propose(self.ctx.watchlist, url, name)
        token = self.ctx.proposals.add(
            Proposal(new.name, new.platform, new.url, request.chat_id, request.user.id)
        )
        await request.reply(
            f"Add <b>{e(new.name)}</b> ({e(new.platform)}) {e(new.url)} to the watchlist?\n"
            "An admin must confirm.",
            confirm_keyboard(token),
        )
        return f"proposed {new.name} {new.url}"

    # -- buttons ---------------------------------------------------------------------------
    async def button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A button press: checked against our records, never trusted (see buttons.py)."""
        query = update.callback_query
        if query is None:
            return
        press = parse_callback(query.data)
        chat = update.effective_chat
        message = query.message if isinstance(query.message, Message) else None
        if press is None or chat is None or message is None:
            await self._refuse_button(query, chat.id if chat else 0, "unknown button data")
            return
        admin_only = isinstance(press, WatchPress | TiePress) or press.action == "mu"
        need = Role.ADMIN if admin_only else Role.MEMBER
        decision = check(self.ctx.watchlist, query.from_user.id, chat.id, chat.type, need)
        if not decision.allowed:
            self.safe_log(
                query.from_user.id,
                chat.id,
                f"button:{query.data}"[:64],
                "",
                "refused",
                decision.reason,
            )
            log.warning(
                "refused a button press from user %s in chat %s: %s",
                query.from_user.id,
                chat.id,
                decision.reason,
            )
            with contextlib.suppress(TelegramError):
                await query.answer(decision.reply)
            return
        request = Request(context.bot, message, query.from_user, chat.id, decision.role, [])
        if isinstance(press, WatchPress):
            await self.run("button:watch", request, lambda r: self._watch_press(r, query, press))
        elif isinstance(press, TiePress):
            await self.run("button:tie", request, lambda r: self._tie_press(r, query, press))
        else:
            await self.run(
                f"button:{press.action}", request, lambda r: self._alert_press(r, query, press)
            )

    async def _refuse_button(self, query: CallbackQuery, chat_id: int, reason: str) -> None:
        log.warning("refused a button press from user %s: %s", query.from_user.id, reason)
        self.safe_log(
            query.from_user.id, chat_id, "button", (query.data or "")[:64], "refused", reason
        )
        with contextlib.suppress(TelegramError):
            await query.answer("This button is not valid.")

    async def _alert_press(self, request: Request, query: CallbackQuery, press: AlertPress) -> str:
        event = queries.sent_alert(
            self.store, press.event_id, request.chat_id, request.message.message_id
        )
        if event is None:
            await query.answer("This button does not belong to an alert sent here.")
            return "refused: forged or foreign alert button"
        if press.action == "ev":
            await query.answer("Building the evidence bundle…")
            return await self.send_evidence(request, _evidence_for(event))
        if press.action == "mu":
            return await self._mute(request, query, event)
        if press.action == "dl":
            return await self._dealer_press(request, query, event)
        return await self._reviewed(request, query, event)

    async def _mute(self, request: Request, query: CallbackQuery, event: Event) -> str:
        until = in_seconds(MUTE_S)
        queries.set_muted(self.store, event.target, until, request.user.id)
        await query.answer(f"{event.target} muted for 24 h")
        await request.reply(
            f"🔕 <b>{e(event.target)}</b> muted until {replies.when(until)} by "
            f"{e(request.user.full_name)}; /resume {e(event.target)} to undo."
        )
        return f"muted {event.target} until {until}"

    async def _reviewed(self, request: Request, query: CallbackQuery, event: Event) -> str:
        if not queries.mark_reviewed(self.store, event, request.user.id):
            await query.answer("Already marked reviewed.")
            return "already reviewed"
        await query.answer("Marked reviewed")
        markup = without_button(request.message.reply_markup, f"rv:{event.id}")
        done = InlineKeyboardButton(
            f"✓ Reviewed by {request.user.first_name}"[:60], callback_data=f"rv:{event.id}"
        )
        rows = [*markup.inline_keyboard, [done]] if markup else [[done]]
        await request.message.edit_reply_markup(InlineKeyboardMarkup(rows))
        return f"reviewed event {event.id}"

    async def _watch_press(self, request: Request, query: CallbackQuery, press: WatchPress) -> str:
        proposal = self.ctx.proposals.take(press.token, request.chat_id)
        if proposal is None:
            await query.answer("This proposal is no longer open.")
            return "refused: unknown or used proposal"
        if not press.confirm:
            await query.answer("Cancelled")
            await request.message.edit_text(f"✖ Not added: {e(proposal.name)} (cancelled).")
            return f"cancelled {proposal.name}"
        await query.answer("Adding…")
        new = propose(self.ctx.watchlist, proposal.url, proposal.name)  # the file may have changed
        return await self._add(request, proposal, new)

    async def _add(self, request: Request, proposal: Proposal, new: NewTarget) -> str:
        before, after = add_target(self.ctx.watchlist_path, new)
        details = {
            "change": "target_added",
            "target": {"name": new.name, "platform": new.platform, "url": new.url},
            "proposed_by": proposal.proposed_by,
            "confirmed_by": request.user.id,
            "sha256_before": before,
            "sha256_after": after,
        }
        self._custody(
            "watchlist_changed",
            f"watchlist:{self.ctx.watchlist_path.name}",
            details,
            subject_is_target=False,
        )
        await request.message.edit_text(
            f"✅ <b>{e(new.name)}</b> added to the watchlist by {e(request.user.full_name)}; "
            "watcher starts capturing it within seconds.",
            parse_mode=ParseMode.HTML,
        )
        return f"added {new.name}"

    # -- helpers ---------------------------------------------------------------------------
    def _custody(
        self, action: str, name: str, details: dict, subject_is_target: bool = True
    ) -> None:
        subject = f"target:{name}" if subject_is_target else name
        self.ctx.app.custody.append(action, subject, details)

    @staticmethod
    def _one_arg(request: Request, usage: str) -> str:
        if len(request.args) != 1:
            raise WatcherError(f"use: {usage}")
        return request.args[0]


def _evidence_for(event: Event) -> EvidenceRequest:
    """The evidence an alert's button asks for: its capture, else its post."""
    if event.capture_id:
        return EvidenceRequest(
            Selection(capture_id=event.capture_id), f"capture #{event.capture_id}"
        )
    if event.post_id:
        return EvidenceRequest(Selection(post_id=event.post_id), f"post {event.post_id}")
    raise WatcherError("this alert has no capture to export")


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"
