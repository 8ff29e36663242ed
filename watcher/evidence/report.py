"""The bundle's ``index.html``: a report a prosecutor opens offline, from files in the bundle."""

from __future__ import annotations

import html
from typing import Any

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}
h1{font-size:1.5em} h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-top:1em}
.post{border:1px solid #ddd;border-radius:6px;padding:1em;margin:1em 0}
.deleted{border-color:#c33;background:#fff5f5} .meta{color:#555;font-size:.9em}
.text{white-space:pre-wrap;margin:.5em 0}
img.photo{max-width:14em;margin:.2em;border:1px solid #ccc}
code{font-size:.8em;word-break:break-all} table{border-collapse:collapse}
td,th{border:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}
"""

_LABELS = {
    "html": "page HTML (as text)",
    "detail_html": "listing page HTML (as text)",
    "wacz": "web archive (WACZ)",
    "mhtml": "MHTML snapshot",
}


def render_report(
    captures: list[dict[str, Any]],
    posts: list[dict[str, Any]],
    selection: dict[str, object],
    fingerprint: str,
    part: int,
    parts: int,
) -> str:
    """The whole report as one HTML document (no scripts, no remote resources)."""
    image_paths = {
        a["sha256"]: a["path"] for c in captures for a in c["artifacts"] if a["kind"] == "image"
    }
    body = [
        "<h1>watcher evidence bundle</h1>",
        f"<p class=meta>Part {part} of {parts}. Selection: {_e(selection)}.</p>",
        _how_to_check(fingerprint),
        "<h2>Captures</h2>",
        _captures_table(captures),
        f"<h2>Posts ({len(posts)})</h2>",
        *(_post(p, image_paths) for p in posts),
    ]
    return (
        "<!doctype html><html><head><meta charset=utf-8>"
        "<meta http-equiv=Content-Security-Policy content=\"default-src 'none'; img-src 'self';"
        " style-src 'unsafe-inline'\">"
        f"<title>watcher evidence</title><style>{_STYLE}</style></head><body>"
        + "\n".join(body)
        + "</body></html>"
    )


def _how_to_check(fingerprint: str) -> str:
    grouped = " ".join(fingerprint[i : i + 4] for i in range(0, len(fingerprint), 4))
    return (
        "<h2>Checking this bundle</h2><p>The bundle says it was signed with the key whose "
        f"fingerprint is <code>{_e(grouped)}</code>. This page is part of the bundle: whoever "
        "altered the bundle could alter this page too, so do not take the fingerprint from "
        "here. Get it from the team that collected the evidence, through a channel you trust: "
        "the signed letter that came with the evidence, the team's own website, or a team "
        "member on the phone at a number you found yourself (they print it with "
        "<code>watcher key</code>). Then run <code>watcher verify BUNDLE.zip --key "
        "FINGERPRINT</code>: <b>VERIFIED</b> means every file is exactly as exported and was "
        "signed with that key. Timestamps are checked with <code>--tsa-ca</code> and the "
        "certificate your timestamp authority publishes.</p><p>Pages are kept as text "
        "(<code>.html.txt</code>) so that opening them runs none of the page's scripts; the "
        "web archive (<code>.wacz</code>) replays the page in a tool such as ReplayWeb.page."
        "</p>"
    )


def _captures_table(captures: list[dict[str, Any]]) -> str:
    rows = [
        "<table><tr><th>#</th><th>target</th><th>time (UTC)</th><th>outcome</th>"
        "<th>URL</th><th>files (SHA-256)</th></tr>"
    ]
    for c in captures:
        files = "<br>".join(
            f'<a href="{_e(a["path"])}">{_e(_LABELS.get(a["kind"], a["kind"]))}</a> '
            f"<code>{_e(a['sha256'])}</code>"
            for a in c["artifacts"]
            if a["kind"] != "image"
        )
        shot = next((a["path"] for a in c["artifacts"] if "screenshot" in a["kind"]), None)
        thumb = f'<br><a href="{_e(shot)}"><img class=photo src="{_e(shot)}"></a>' if shot else ""
        rows.append(
            f"<tr><td>{c['id']}</td><td>{_e(c['target'])}</td><td>{_e(c['started_at'])} – "
            f"{_e(c['ended_at'])}</td><td>{_e(c['status'])} {_e(c.get('reason') or '')}</td>"
            f"<td>{_e(c.get('final_url') or c.get('requested_url'))}</td>"
            f"<td>{files}{thumb}</td></tr>"
        )
    rows.append("</table>")
    return "\n".join(rows)


def _post(post: dict[str, Any], image_paths: dict[str, str]) -> str:
    versions = post["versions"]
    latest = versions[-1]
    deleted = post.get("deleted_at")
    lines = [
        f"<div class='post{' deleted' if deleted else ''}'>",
        f"<b>{_e(post['target'])}</b> · post <code>{_e(post['post_id'])}</code>",
        f"<div class=meta>posted {_e(latest.get('posted_at') or 'unknown')} · first seen "
        f"{_e(post['first_seen_at'])} · last seen {_e(post['last_seen_at'])}"
        + (
            f" · <b>deleted</b> (noticed {_e(deleted)}, capture #{post['deleted_capture_id']})"
            if deleted
            else ""
        )
        + (
            f' · <a href="{_e(latest["permalink"])}">original link</a>'
            if latest.get("permalink")
            else ""
        )
        + "</div>",
    ]
    for version in reversed(versions):
        label = "current" if version is latest else f"version {version['version']}"
        if len(versions) > 1:
            lines.append(
                f"<div class=meta>{label}, seen {_e(version['seen_at'])} "
                f"(capture #{version['capture_id']})</div>"
            )
        lines.append(f"<div class=text>{_e(version.get('text') or '')}</div>")
        for sha in version.get("image_shas") or []:
            if sha and sha in image_paths:
                path = _e(image_paths[sha])
                lines.append(
                    f'<a href="{path}"><img class=photo src="{path}"></a><br><code>{_e(sha)}</code>'
                )
    lines.append("</div>")
    return "\n".join(lines)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)
