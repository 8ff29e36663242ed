"""The Telegram bot: investigators ask watcher from their phones (commands, photos, buttons).

It runs inside ``watcher run`` on the daemon's PTB Application (same event loop as the
scheduler): see :func:`watcher.bot.service.serve_bot`. Access rules: :mod:`watcher.bot.access`.
"""
