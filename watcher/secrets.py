"""Keep secrets (bot token, session cookies) out of every log line.

Libraries log request URLs that contain the bot token (PTB at DEBUG, httpx at INFO). Rather
than trusting every logger, each log record is redacted as it is created, so no handler,
including ones added later, ever sees a registered secret.
"""

from __future__ import annotations

import logging
import threading

REDACTED = "[REDACTED]"
_lock = threading.Lock()
_secrets: set[str] = set()
_installed = False


def register_secret(value: str | None) -> None:
    """Redact ``value`` from every log record from now on."""
    global _installed
    if not value or len(value) < 6:
        return
    with _lock:
        _secrets.add(value)
        if not _installed:
            _install_factory()
            _installed = True


def redact(text: str) -> str:
    """``text`` with every registered secret replaced."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _install_factory() -> None:
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call: leave it to logging to report
            return record
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return record

    logging.setLogRecordFactory(factory)
