"""In-process fakes of external services used by the test-suite."""

from .telegram_api import FakeTelegram, RecordedCall, RecordedFile

__all__ = ["FakeTelegram", "RecordedCall", "RecordedFile"]
