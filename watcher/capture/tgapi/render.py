"""The rendering of messages received through the Telegram API: HTML made by watcher (pure).

It is what a person looks at, never a capture of a Telegram page: every rendering says so
at its top, in words Chromium's screenshot keeps. No script can run in it (a Content
Security Policy allowing none, and every message's text escaped); photos are inlined as
``data:`` addresses so rendering it fetches nothing.
"""

from __future__ import annotations

import base64
from html import escape

from watcher.capture.tgapi.records import RENDERING_LABEL, Account, ApiMessage, ChatRef

_HEADLINE = RENDERING_LABEL[0].upper() + RENDERING_LABEL[1:]
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_STYLE = """
body{font-family:'Noto Sans',sans-serif;margin:0;background:#e6ebee;color:#111}
.label{background:#7a1f1f;color:#fff;padding:12px 16px;font-weight:bold;font-size:18px}
.meta{padding:8px 16px;font-size:13px;color:#333;background:#fff;border-bottom:1px solid #ccc}
.msg{background:#fff;margin:10px 16px;padding:10px 12px;border-radius:8px;max-width:760px}
.head{font-size:12px;color:#555;margin-bottom:4px}
.text{white-space:pre-wrap;word-wrap:break-word;font-size:15px}
.note{font-size:12px;color:#666;margin-top:4px}
.photos img{max-width:360px;max-height:360px;margin:4px 4px 0 0;border:1px solid #ccc}
.service{font-style:italic;color:#666;font-size:13px;margin:6px 16px}
"""


def render_messages(
    chat: ChatRef,
    account: Account,
    received_at: str,
    messages: list[ApiMessage],
    photos: dict[int, tuple[bytes, str]],
) -> str:
    """The page: the label, who read what and when, then the messages oldest first.

    ``photos``: each downloaded photo's bytes and media type by message id.
    """
    rows = [_message(m, chat, photos.get(m.id)) for m in sorted(messages, key=lambda m: m.id)]
    title = escape(chat.title or chat.address)
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{_CSP}\">"
        f"<title>{escape(RENDERING_LABEL)}: {title}</title><style>{_STYLE}</style></head><body>"
        f"<div class='label'>{escape(_HEADLINE)}. Made by watcher; "
        "not a capture of a Telegram page.</div>"
        f"<div class='meta'>Chat: {title} ({escape(chat.address)}) · read through account "
        f"{escape(account.name)} (Telegram user id {account.user_id}) · received "
        f"{escape(received_at)} · {len(messages)} message(s)</div>"
        + "".join(rows)
        + "</body></html>"
    )


def _message(m: ApiMessage, chat: ChatRef, photo: tuple[bytes, str] | None) -> str:
    if m.service:
        return f"<div class='service'>#{m.id} {escape(m.date or '')} · {escape(m.text)}</div>"
    head = [f"#{m.id}", escape(m.date or "no date")]
    if m.author:
        head.append(escape(m.author))
    if m.views is not None:
        head.append(f"{m.views} views")
    if m.edit_date:
        head.append(f"edited {escape(m.edit_date)}")
    notes = []
    if m.forwarded_from:
        notes.append(f"forwarded from {escape(m.forwarded_from)}")
    if m.reply_to:
        notes.append(f"reply to #{m.reply_to}")
    if m.grouped_id:
        notes.append(f"album {m.grouped_id}")
    if m.links:
        notes.append("links: " + ", ".join(escape(u) for u in m.links))
    body = f"<div class='text'>{escape(m.text)}</div>" if m.text else ""
    if photo is not None:
        data, media_type = photo
        encoded = base64.b64encode(data).decode("ascii")
        body += (
            f"<div class='photos'><img alt='photo of message {m.id}' "
            f"src='data:{escape(media_type)};base64,{encoded}'></div>"
        )
    elif m.photo is not None:
        notes.append("photo not downloaded")
    note = f"<div class='note'>{' · '.join(notes)}</div>" if notes else ""
    return (
        f"<div class='msg'><div class='head'>{' · '.join(head)} · "
        f"{escape(chat.permalink(m.id))}</div>{body}{note}</div>"
    )
