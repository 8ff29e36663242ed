"""The dossier of one dealer: the section a ``watcher export --dealer NAME`` report leads with.

Its accounts and the ties between them as a picture (inline SVG drawn here: the accounts on
a circle, in the dealer's order, so the same dealer is drawn the same way every time; no
script), the accounts with when they were first seen and whether they went away, each tie
with its evidence, the contacts, the items offered, and the photos the accounts share side
by side. The rest of the report (the timeline of each account, keyword hits, deletions,
posts, annex) is :mod:`watcher.evidence.report`'s, for the dealer's captures.

:func:`render_dossier` is pure; :func:`gather` reads what it needs from the store.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

from watcher.detect.dealers import AUTHOR_PREFIX, Dealer, Rules, SharedKey, shown
from watcher.store.db import Store
from watcher.store.dealers import (
    Gone,
    find_dealer,
    first_seen,
    gone,
    group_targets,
    names_of,
)
from watcher.store.findings import ReportPost
from watcher.timeutil import human_time, utc_now

WIDTH, HEIGHT = 680, 360
_RADIUS = 120
_CONTACT_KINDS = ("phone", "telegram", "wechat", "line", "whatsapp", "zalo", "link")
MAX_ITEMS = 30
MAX_PHOTO_PAIRS = 12


@dataclass(frozen=True, slots=True)
class Item:
    """A post offered by one of the dealer's accounts: its words and any prices found."""

    account: str
    post_id: str
    text: str
    seen_at: str  # posted (first seen when the page gives no date)
    prices: tuple[str, ...] = ()  # filled by the price extractor when there is one


@dataclass(slots=True)
class DossierInput:
    """Everything the dossier shows; gathered at export."""

    dealer: Dealer
    first_seen: dict[str, str]
    went: dict[str, Gone | None]
    names: list[str]
    items: list[Item] = field(default_factory=list)
    image_paths: dict[str, str] = field(default_factory=dict)  # sha -> path in the bundle


def prices_in(text: str) -> tuple[str, ...]:
    """Prices in a post's text. The price extractor (issue 22, OCR part) plugs in here; until
    it does, none are read and the report shows the post's words."""
    return ()


# -- the picture ------------------------------------------------------------------------------
def graph_svg(dealer: Dealer) -> str:
    """The accounts on a circle and a line for each tie: thicker for a heavier tie, dashed
    when it does not join (weak or rejected), labelled with what the accounts share."""
    accounts = list(dealer.accounts)
    n = len(accounts)
    height = 140 if n == 2 else HEIGHT  # two accounts side by side need no more
    cx, cy = WIDTH / 2, height / 2
    place = {}
    # Two accounts side by side, more on an ellipse from the top, in the dealer's order.
    start = math.pi if n == 2 else -math.pi / 2
    for i, account in enumerate(accounts):
        angle = start + 2 * math.pi * i / max(n, 1)
        place[account] = (cx + _RADIUS * 1.6 * math.cos(angle), cy + _RADIUS * math.sin(angle))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class=graph width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{_e(dealer.name)}: {n} accounts and the ties between them">',
        f"<title>{_e(dealer.name)}: accounts and ties</title>",
    ]
    for tie in dealer.ties:
        (x1, y1), (x2, y2) = place[tie.a], place[tie.b]
        colour = "#b3261e" if tie.verdict == "rejected" else "#1f4e8c"
        dash = "" if tie.joins else ' stroke-dasharray="6 4"'
        width = 1 + 5 * tie.weight
        parts.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" '
            f'stroke-width="{width:.1f}"{dash}><title>{_e(tie.id)}: {_e(tie.summary())}'
            f"</title></line>"
        )
        mx, my = (x1 + x2) / 2, (y1 + y2) / 2
        # Outlined in white so the words stay readable over the line they label.
        parts.append(
            f'<text x="{mx:.1f}" y="{my - 8:.1f}" text-anchor="middle" class=edge '
            f'stroke="#fff" stroke-width="4" paint-order="stroke">'
            f"{_e(_edge_label(tie.keys))}</text>"
        )
    for account in accounts:
        x, y = place[account]
        watched = not account.startswith(AUTHOR_PREFIX)
        fill = "#ffffff" if watched else "#c8c8cc"
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="9" fill="{fill}" stroke="#1d1d1f" '
            'stroke-width="2"/>'
        )
        # The name outside the ellipse, away from the lines that meet at the node.
        dx, dy = x - cx, y - cy
        length = math.hypot(dx, dy) or 1.0
        ux, uy = dx / length, dy / length
        anchor = "start" if ux > 0.3 else "end" if ux < -0.3 else "middle"
        lx, ly = x + ux * 16, y + uy * 18 + (4 if abs(uy) < 0.5 else 9 if uy > 0 else 0)
        parts.append(
            f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}" class=node '
            f'stroke="#fff" stroke-width="4" paint-order="stroke">'
            f"{_e(_short(account.removeprefix(AUTHOR_PREFIX)))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _short(name: str, limit: int = 22) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _edge_label(keys: tuple[SharedKey, ...]) -> str:
    strong = [k for k in keys if not k.common]
    photos = sum(k.kind == "photo" for k in strong)
    forwards = sum(k.kind == "forward" for k in strong)
    words = sorted({k.kind for k in strong if k.kind not in ("photo", "forward")})
    if photos:
        words.append(f"{photos} photo{'s' if photos != 1 else ''}")
    if forwards:
        words.append(f"{forwards} forward{'s' if forwards != 1 else ''}")
    return ", ".join(words) or "common only"


# -- the section ------------------------------------------------------------------------------
_STYLE = (
    "svg.graph{max-width:100%;height:auto;border:1px solid var(--line);border-radius:6px}"
    "svg .node{font-size:13px;font-weight:600} svg .edge{font-size:11px;fill:#1f4e8c}"
    ".gone{color:var(--red)}"
)


def render_dossier(data: DossierInput) -> str:
    """The dealer section of the report (HTML, no script)."""
    d = data.dealer
    also = f" (also called {', '.join(_e(n) for n in data.names)})" if data.names else ""
    out = [
        f"<style>{_STYLE}</style>",
        f"<h2 id=dealer>Dealer {_e(d.name)}</h2>",
        f"<p>{len(d.accounts)} accounts{also}, tied by what they share: the same phone "
        "numbers, messenger handles, links or photos, or one forwarding the other. A person "
        "can confirm or reject each tie; their word is shown beside it.</p>",
        graph_svg(d),
        "<p class=mute>Solid line: a tie that joins the accounts (thicker: more evidence). "
        "Dashed: evidence too weak to join them on its own (a photo many accounts use), or a "
        "tie a person rejected (red). Grey circles: accounts seen as authors or forwarded "
        "from, not watched themselves.</p>",
        "<h3 id=dealer-accounts>Accounts</h3>",
        _accounts(data),
        "<h3 id=dealer-ties>Ties and their evidence</h3>",
        _ties(d),
        "<h3 id=dealer-contacts>Contacts</h3>",
        _contacts(d),
        "<h3 id=dealer-items>Items offered</h3>",
        _items(data),
        "<h3 id=dealer-photos>Photos shared between accounts</h3>",
        _photos(data),
    ]
    return "\n".join(out)


def _accounts(data: DossierInput) -> str:
    rows = []
    for account in data.dealer.accounts:
        went = data.went.get(account)
        status = (
            f"<span class=gone>{_e(went.how)} since {_e(human_time(went.since))}</span>"
            if went
            else "active"
        )
        kind = "watched" if not account.startswith(AUTHOR_PREFIX) else "author / forwarded from"
        rows.append(
            f"<tr><td>{_e(shown(account))}</td><td>{kind}</td>"
            f"<td>{_e(human_time(data.first_seen.get(account)))}</td><td>{status}</td></tr>"
        )
    return (
        "<table><tr><th>account</th><th>how watcher sees it</th><th>first seen</th>"
        f"<th>now</th></tr>{''.join(rows)}</table>"
    )


def _ties(dealer: Dealer) -> str:
    out = []
    for tie in dealer.ties:
        verdict = f" — <b>{_e(tie.verdict)} by a person</b>" if tie.verdict else ""
        joins = "joins them" if tie.joins else "does not join them"
        out.append(
            f"<div class='finding contact'><b>{_e(shown(tie.a))} ↔ {_e(shown(tie.b))}</b> "
            f"<span class=meta>tie {_e(tie.id)}, weight {tie.weight:.2f}, {joins}</span>"
            f"{verdict}<ul>"
        )
        for key in tie.keys:
            common = f" (common: on {key.accounts} accounts)" if key.common else ""
            seen = "; ".join(
                f"{_e(shown(s.account))} post {_e(s.post_id or '—')} ({_e(human_time(s.at))})"
                for s in key.seen[:6]
            )
            more = f"; and {len(key.seen) - 6} more" if len(key.seen) > 6 else ""
            value = key.key[:16] + "…" if key.kind == "photo" else key.key
            out.append(f"<li>{_e(key.kind)} <code>{_e(value)}</code>{common}: {seen}{more}</li>")
        out.append("</ul></div>")
    return "\n".join(out) or "<p class=mute>No ties.</p>"


def _contacts(dealer: Dealer) -> str:
    found: dict[tuple[str, str], dict] = {}
    for tie in dealer.ties:
        for key in tie.keys:
            if key.kind not in _CONTACT_KINDS:
                continue
            entry = found.setdefault((key.kind, key.key), {"accounts": set(), "first": "~"})
            for seen in key.seen:
                entry["accounts"].add(seen.account)
                entry["first"] = min(entry["first"], seen.at or "~")
    if not found:
        return "<p class=mute>No contact shared between the accounts.</p>"
    rows = [
        f"<tr><td>{_e(kind)}</td><td><code>{_e(value)}</code></td>"
        f"<td>{_e(', '.join(shown(a) for a in sorted(e['accounts'])))}</td>"
        f"<td>{_e(human_time(e['first'].strip('~') or None))}</td></tr>"
        for (kind, value), e in sorted(found.items(), key=lambda kv: kv[1]["first"])
    ]
    return (
        "<table><tr><th>kind</th><th>contact</th><th>given by</th><th>first seen</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _items(data: DossierInput) -> str:
    if not data.items:
        return "<p class=mute>No post of these accounts is in this bundle.</p>"
    rows = []
    for item in data.items[:MAX_ITEMS]:
        prices = ", ".join(item.prices) or "<span class=mute>—</span>"
        rows.append(
            f"<tr><td>{_e(shown(item.account))}</td><td>{_e(human_time(item.seen_at))}</td>"
            f"<td>{_e(item.text[:240])}</td><td>{prices}</td></tr>"
        )
    more = (
        f"<p class=mute>… and {len(data.items) - MAX_ITEMS} more posts (all under Posts).</p>"
        if len(data.items) > MAX_ITEMS
        else ""
    )
    return (
        "<table><tr><th>account</th><th>posted</th><th>what it says</th><th>prices</th></tr>"
        + "".join(rows)
        + "</table>"
        + more
    )


def _photos(data: DossierInput) -> str:
    pairs = []
    done = set()
    for tie in data.dealer.ties:
        for key in tie.keys:
            if key.kind != "photo" or key.key in done:
                continue
            done.add(key.key)
            figures = []
            for seen in key.seen[:2]:
                path = data.image_paths.get(seen.detail)
                img = (
                    f"<img src='{_e(path)}' alt='photo of {_e(shown(seen.account))}'>"
                    if path
                    else "<p class=mute>(photo not in this bundle)</p>"
                )
                figures.append(
                    f"<figure>{img}<figcaption>{_e(shown(seen.account))} post "
                    f"{_e(seen.post_id or '—')}, {_e(human_time(seen.at))}</figcaption></figure>"
                )
            common = f" (common: on {key.accounts} accounts)" if key.common else ""
            pairs.append(f"<p class=meta>photo {_e(key.key[:16])}…{common}</p>")
            pairs.append(f"<div class=pair>{''.join(figures)}</div>")
            if len(done) >= MAX_PHOTO_PAIRS:
                break
    return "\n".join(pairs) or "<p class=mute>No photo shared between the accounts.</p>"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


# -- gathering --------------------------------------------------------------------------------
def dealer_targets(dealer: Dealer) -> list[str]:
    """The watched pages whose captures hold the dealer's posts: its watched accounts, and
    the groups its author accounts posted in."""
    targets = {a for a in dealer.accounts if not a.startswith(AUTHOR_PREFIX)}
    for tie in dealer.ties:
        for key in tie.keys:
            targets |= {s.target for s in key.seen if s.target and s.account in dealer.accounts}
    return sorted(targets)


def photo_shas(dealer: Dealer) -> set[str]:
    """Every photo the dossier shows side by side."""
    return {
        s.detail for t in dealer.ties for k in t.keys if k.kind == "photo" for s in k.seen[:2]
    } - {""}


def items_of(dealer: Dealer, posts: list[ReportPost], groups: set[str]) -> list[Item]:
    """The dealer's posts in this bundle, newest first, with any prices in their words."""
    mine = set(dealer.accounts)
    items = []
    for post in posts:
        latest = post.latest
        author = AUTHOR_PREFIX + (latest.author or "").strip()
        account = author if post.target in groups else post.target
        if account in mine:
            items.append(
                Item(
                    account,
                    post.post_id,
                    latest.text,
                    post.versions[0].posted_at or post.first_seen_at,
                    prices_in(latest.text),
                )
            )
    return sorted(items, key=lambda i: i.seen_at, reverse=True)


def gather(
    store: Store,
    name: str,
    rules: Rules,
    posts: list[ReportPost],
    image_paths: dict[str, str],
) -> DossierInput:
    """The dossier of the dealer ``name`` as the archive has it now."""
    dealer = find_dealer(store, name, rules)
    now = utc_now()
    return DossierInput(
        dealer=dealer,
        first_seen=first_seen(store),
        went={a: gone(store, a, now) for a in dealer.accounts},
        names=[n for n in names_of(store, dealer.anchor) if n != dealer.name],
        items=items_of(dealer, posts, group_targets(store)),
        image_paths=image_paths,
    )
