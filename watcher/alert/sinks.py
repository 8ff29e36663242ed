"""Alert sinks: where alerts go, one class each, registered by name.

A sink class has a ``name`` (the key of its section under the watchlist's ``alerts:``, and
the ``sink`` of its outbox rows), a ``config_model`` (that section's pydantic model, a
:class:`watcher.watchlist.AlertSection`: the watchlist reads the section with it), and
builds itself from that section with ``from_watchlist(app, given)``: None when it cannot
send (no token, say), and its alerts then wait in the outbox. ``given`` is what a caller
already holds for it (the daemon passes the Telegram token it loaded for the bot).

Register a class with :func:`register_sink`; :func:`registered_sinks` names them all, the
built-in ones (``watcher.alert.builtin``) included. Adding a sink is one class in one module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from watcher.alert.render import AlertMessage
    from watcher.app import App
    from watcher.watchlist import AlertSection


class Sink(Protocol):
    """A built sink: sends rendered alerts to one kind of destination."""

    name: str

    async def send(self, chat_id: str, message: AlertMessage) -> list[int]: ...

    async def send_text(self, chat_id: str, html: str) -> list[int]: ...

    def unattachable(self, shas: tuple[str, ...]) -> dict[str, str]:
        """The stored photos this sink cannot attach, each with why (may block: a thread)."""
        ...

    async def close(self) -> None: ...


class SinkType(Protocol):
    """A sink class: its name, its section's model, and how it builds itself."""

    name: str
    config_model: type[AlertSection]

    def from_watchlist(self, app: App, given: Any = None) -> Sink | None: ...


SINKS: dict[str, SinkType] = {}
T = TypeVar("T", bound=SinkType)


def register_sink(cls: T) -> T:
    """Class decorator: alerts routed to ``cls.name`` are sent by ``cls``."""
    SINKS[cls.name] = cls
    return cls


def registered_sinks() -> dict[str, SinkType]:
    """Every sink class by name: the built-in ones and any registered since."""
    # Imported here, not at the top: the built-in sinks define their sections with the
    # watchlist's field types, and the watchlist asks this which sections there are.
    from watcher.alert import builtin  # noqa: F401  (registers the built-in sinks)

    return dict(SINKS)
