"""Which events go to which chats: the watchlist's ``alerts`` block and a target's ``alert_on``."""

from __future__ import annotations

from dataclasses import dataclass

from watcher.kinds import Keyword, always_sent
from watcher.models import Event, EventKind
from watcher.watchlist import Watchlist

# Problems with watcher itself reach the team whatever a target's alert_on says.
ALWAYS = always_sent()


@dataclass(frozen=True, slots=True)
class Destination:
    """One place alerts go: a sink name and a chat within it, with the kinds it wants."""

    sink: str
    chat_id: str
    kinds: frozenset[str]


def destinations(watchlist: Watchlist) -> list[Destination]:
    """Every alert destination the watchlist configures, in each sink's section."""
    found = []
    for sink, settings in watchlist.alerts.configured().items():
        kinds = frozenset(settings.kinds) | {str(EventKind.WATCHLIST_INVALID)}
        found += [Destination(sink, address, kinds) for address in settings.addresses()]
    return found


def routes_for(event: Event, watchlist: Watchlist) -> list[Destination]:
    """The destinations that should receive ``event``.

    One alert per post: a ``keyword`` event is not sent where the post's own new/edited
    alert goes, since that alert already names the matched terms.
    """
    if not _target_wants(event, watchlist):
        return []
    companion = event.payload.post_event if isinstance(event.payload, Keyword) else None
    covered = companion is not None and _alerts_on_everything(event, watchlist)
    return [
        d
        for d in destinations(watchlist)
        if str(event.kind) in d.kinds and not (covered and companion in d.kinds)
    ]


def _alerts_on_everything(event: Event, watchlist: Watchlist) -> bool:
    target = watchlist.find(event.target)
    return target is None or target.alert_on == "all"


def _target_wants(event: Event, watchlist: Watchlist) -> bool:
    if event.kind in ALWAYS:
        return True
    target = watchlist.find(event.target)
    if target is None or target.alert_on == "all":
        return True
    # alert_on: keyword — a noisy target only alerts on posts that matched a keyword.
    return event.kind == EventKind.KEYWORD
