"""The chat each Telegram-account target resolved to (table ``telegram_chats``, migration
``m014_telegram_chats``), as functions over a :class:`Store`: an invite link is used once to
join, and its chat's id is read from here ever after."""

from __future__ import annotations

from watcher.capture.tgapi.records import ChatRef
from watcher.store.db import Store, translated


@translated
def stored_chat(store: Store, target: str, url: str) -> ChatRef | None:
    """The chat ``target``'s ``url`` resolved to, if it ever did."""
    rows = list(
        store.db.query(
            "SELECT chat_id, kind, access_hash, title, username FROM telegram_chats "
            "WHERE target = ? AND url = ?",
            [target, url],
        )
    )
    if not rows:
        return None
    row = rows[0]
    return ChatRef(
        row["chat_id"], row["kind"], row["access_hash"], row["title"] or "", row["username"]
    )


@translated
def save_chat(store: Store, target: str, url: str, chat: ChatRef, account: str, now: str) -> None:
    """Remember the chat ``url`` resolved to (its id and access hash)."""
    with store.transaction():
        store.db["telegram_chats"].upsert(
            {
                "target": target,
                "url": url,
                "chat_id": chat.chat_id,
                "kind": chat.kind,
                "access_hash": chat.access_hash,
                "title": chat.title,
                "username": chat.username,
                "account": account,
                "resolved_at": now,
            },
            pk=("target", "url"),
        )


@translated
def archived_photo(store: Store, url: str) -> tuple[str, int, str | None] | None:
    """SHA-256, size and media type of the photo stored for ``url`` (a message's permalink
    with the photo's id: Telegram never changes a photo under its id), so a message seen
    again is not downloaded again."""
    rows = list(
        store.db.query(
            "SELECT pi.sha256, i.size, i.media_type FROM post_images pi "
            "JOIN images i ON i.sha256 = pi.sha256 WHERE pi.url = ? LIMIT 1",
            [url],
        )
    )
    if not rows:
        return None
    return rows[0]["sha256"], rows[0]["size"] or 0, rows[0]["media_type"]
