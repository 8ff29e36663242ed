"""Keep secrets (bot token, session cookies) out of every log line.

Libraries log request URLs that contain the bot token (PTB at DEBUG, httpx at INFO). Rather
than trusting every logger, each log record is redacted as it is created, so no handler,
including ones added later, ever sees a registered secret.

A secret is also found encoded: PTB's file downloads put the token in the URL path, where
httpx writes its ``:`` as ``%3A`` (``.../file/bot555777%3ASECRET/...``), and a URL quoted
twice shows ``%253A``. Any character of a secret may appear as itself or percent-encoded,
once or twice, in either case of hex digit.
"""

from __future__ import annotations

import logging
import re
import threading

REDACTED = "[REDACTED]"
_lock = threading.Lock()
_secrets: set[str] = set()
_patterns: list[re.Pattern[str]] = []
_installed = False


def _encoded_pattern(secret: str) -> re.Pattern[str]:
    """Matches ``secret`` with any of its characters percent-encoded (once or twice)."""
    parts = []
    for char in secret:
        encoded = "".join(f"%(?:25)?{_hex_either_case(byte)}" for byte in char.encode("utf-8"))
        parts.append(f"(?:{re.escape(char)}|{encoded})")
    return re.compile("".join(parts))


def _hex_either_case(byte: int) -> str:
    return "".join(f"[{d.upper()}{d.lower()}]" if d.isalpha() else d for d in f"{byte:02x}")


def register_secret(value: str | None) -> None:
    """Redact ``value`` from every log record from now on."""
    global _installed
    if not value or len(value) < 6:
        return
    with _lock:
        if value not in _secrets:
            _secrets.add(value)
            _patterns.append(_encoded_pattern(value))
        if not _installed:
            _install_factory()
            _installed = True


def redact(text: str) -> str:
    """``text`` with every registered secret replaced, as it is and percent-encoded."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    if "%" in text:
        for pattern in _patterns:
            text = pattern.sub(REDACTED, text)
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
