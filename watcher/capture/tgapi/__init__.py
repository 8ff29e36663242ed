"""Telegram through the team's own account (issue 24): a capture source beside the browser.

``client`` is the only module that imports Telethon: it reads chats and messages into the
records of ``records`` and translates Telethon's errors into ours, once. ``accounts`` holds
what is per account (credentials, the session file, pacing, pauses and stops); ``render``
makes the labelled HTML rendering of the messages that Chromium screenshots.
"""
