"""The bundle's ``index.html``: a report a prosecutor opens offline, from files in the bundle.

It reads top to bottom as a case file: who collected what, when, and how to check it; what
was found (deletions, returns, edits, keywords, photos and contacts shared with other
accounts), each finding linking to its post; every post with its screenshot and photos;
and last the annex of captures and hashes. No script, nothing loaded from outside the
bundle (the page's Content-Security-Policy forbids it), one form for every date, and a
print stylesheet for A4. Pure: the caller gathers everything into a :class:`ReportInput`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from watcher.alert.textdiff import word_diff
from watcher.evidence.timeline import activity_svg
from watcher.store.findings import (
    Findings,
    KeywordHit,
    PhotoKeywords,
    ReportPost,
    ReportVersion,
)
from watcher.timeutil import human_time

CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"
LONG_TEXT = 1500  # characters: a longer post's keyword finding shows the hits in context
HIT_CONTEXT = 120

_STYLE = """
:root{--ink:#1d1d1f;--mute:#5b5b60;--line:#d7d7dc;--red:#b3261e;--green:#2e7d32;--blue:#1f4e8c}
body{font:15px/1.45 "Noto Sans","DejaVu Sans",system-ui,sans-serif;margin:2em auto;
 max-width:52em;padding:0 1.5em;color:var(--ink)}
h1{font-size:1.6em;margin:.2em 0} h2{font-size:1.3em;border-bottom:2px solid var(--ink);
 margin-top:2em;padding-bottom:.15em} h3{font-size:1.05em;margin:1.4em 0 .4em}
a{color:var(--blue)} .mute,.meta{color:var(--mute);font-size:.88em}
table{border-collapse:collapse;width:100%;margin:.5em 0}
td,th{border:1px solid var(--line);padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f5;font-weight:600} table.facts th{width:11em}
.counts{display:grid;grid-template-columns:repeat(auto-fill,minmax(9.5em,1fr));gap:.4em;
 margin:.8em 0} .count{border:1px solid var(--line);border-radius:6px;padding:.35em .6em;
 color:var(--ink);text-decoration:none}
.count b{display:block;font-size:1.5em;line-height:1.1} .count.alert b{color:var(--red)}
.key{background:#f6f7fb;border:1px solid var(--line);border-radius:6px;padding:.6em 1em}
code,.hash{font-family:"DejaVu Sans Mono",monospace;font-size:.8em;overflow-wrap:anywhere}
.hash{word-break:break-all} .fp{font-size:.95em;overflow-wrap:normal}
.finding{border-left:4px solid var(--line);padding:.3em .8em;margin:.8em 0;break-inside:avoid}
.finding.deleted{border-color:var(--red)} .finding.restored{border-color:var(--green)}
.finding.edited{border-color:#c77700} .finding.keyword{border-color:#6a1b9a}
.finding.photo,.finding.contact{border-color:var(--blue)}
.read{display:grid;grid-template-columns:10em 1fr;gap:.8em;align-items:start}
.read img{max-width:100%;max-height:10em;border:1px solid var(--line)}
.text{white-space:pre-wrap;margin:.4em 0;padding:.4em .6em;background:#fafafa;
 border:1px solid #eee;border-radius:4px}
del{background:#fde0dc;color:var(--red)} ins{background:#d8f3dc;text-decoration:underline}
mark{background:#ffe58a;padding:0 .1em}
.post{border:1px solid var(--line);border-radius:8px;padding:.8em 1em;margin:1.2em 0}
.post.deleted{border-color:var(--red)} .badge{display:inline-block;font-size:.75em;
 font-weight:600;border-radius:3px;padding:.05em .4em;margin-left:.3em;color:#fff;
 background:var(--mute)} .badge.deleted{background:var(--red)}
.badge.restored{background:var(--green)} .badge.edited{background:#c77700}
.badge.keyword{background:#6a1b9a} .badge.photo{background:var(--blue)}
figure{margin:.6em 0} figure.shot img{max-width:100%;border:1px solid var(--line)}
figcaption{color:var(--mute);font-size:.8em}
.photos{display:flex;flex-wrap:wrap;gap:.6em} .photos figure{width:15em;margin:0}
.photos img{max-width:100%;max-height:15em;border:1px solid var(--line)}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:1em} .pair img{max-width:100%;
 max-height:18em;border:1px solid var(--line)}
svg.timeline{max-width:100%;height:auto} svg .axis{font-size:10px;fill:var(--mute)}
ol.toc{columns:2} pre{font-size:.9em;background:#fff;border:1px solid var(--line);
 padding:.4em .6em} .annex td{font-size:.85em}
@page{size:A4;margin:14mm 12mm}
@media print{
 body{font-size:10.5pt;margin:0;padding:0;max-width:none}
 a{color:inherit;text-decoration:none}
 h2{break-before:page;break-after:avoid} h2.first{break-before:auto} h3{break-after:avoid}
 .post,.finding,figure,.pair,table.facts,.counts,svg{break-inside:avoid}
 .counts{display:block;columns:2;margin:.6em 0} .count{display:block;border:0;padding:.1em 0}
 .count b{display:inline;font-size:1em;margin-right:.3em}
 ol.toc{columns:3;break-inside:avoid;font-size:.9em} .key{padding:.3em .8em}
 figure.shot img{max-height:230mm;width:auto}
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
"""

_LABELS = {
    "html": "page HTML (as text)",
    "detail_html": "listing page HTML (as text)",
    "wacz": "web archive (WACZ)",
    "mhtml": "MHTML snapshot",
    "screenshot": "screenshot",
    "error_screenshot": "screenshot of the error",
    "detail_screenshot": "listing page screenshot",
    "posts": "posts found (JSON)",
    "metadata": "collection record (JSON)",
    # Read through a Telegram account (issue 24): never called a page or a screenshot of one.
    "rendering_screenshot": "rendering of messages received through the Telegram API (PNG)",
    "rendering_html": "rendering of messages received through the Telegram API (HTML as text)",
    "api_messages_tl": "messages as received from the Telegram API (Telegram's serialised form)",
    "api_messages_json": "messages as received from the Telegram API (JSON)",
}


@dataclass(frozen=True, slots=True)
class Crop:
    """A post cut out of a capture's screenshot at export (a derived file, not a capture's)."""

    path: str
    capture_id: int
    screenshot_path: str
    screenshot_sha: str


@dataclass(slots=True)
class ReportInput:
    """Everything the report shows; gathered by the export."""

    captures: list[dict[str, Any]]
    findings: Findings
    asked_for: str
    operators: list[str]
    exported_at: str
    watcher_version: str
    fingerprint: str
    part: int = 1
    parts: int = 1
    image_paths: dict[str, str] = field(default_factory=dict)
    crops: dict[tuple[str, str], Crop] = field(default_factory=dict)
    other_files: dict[str, str] = field(default_factory=dict)  # path -> SHA-256
    lead: str = ""  # a section that comes first after the summary (a dealer's dossier)


@dataclass(frozen=True, slots=True)
class Counts:
    """The summary's figures (the test compares them with the database)."""

    targets: int
    captures: int
    captures_failed: int
    posts: int
    deleted: int
    restored: int
    edited: int
    photos: int
    keyword_posts: int
    keyword_hits: int
    photos_elsewhere: int
    shared_contacts: int


def counts(data: ReportInput) -> Counts:
    """The summary's figures."""
    posts = data.findings.posts
    changes = [{c.change for c in p.visibility} for p in posts]
    return Counts(
        targets=len({c["target"] for c in data.captures}),
        captures=len(data.captures),
        captures_failed=sum(c["status"] != "ok" for c in data.captures),
        posts=len(posts),
        deleted=sum("deleted" in c for c in changes),
        restored=sum("restored" in c for c in changes),
        edited=sum(len(p.versions) > 1 for p in posts),
        photos=len({s for p in posts for v in p.versions for s in v.image_shas if s}),
        keyword_posts=len(
            {p.key for p in posts if any(v.keywords for v in p.versions)}
            | {k.post for k in data.findings.photo_keywords}
        ),
        keyword_hits=sum(len(v.keywords) for p in posts for v in p.versions)
        + sum(len(k.keywords) for k in data.findings.photo_keywords),
        photos_elsewhere=len(
            {m.later_sha for m in data.findings.photos_seen_before if m.other_account}
        ),
        shared_contacts=len(data.findings.contacts),
    )


def render_report(data: ReportInput) -> str:
    """The whole report as one HTML document (no scripts, no remote resources)."""
    page = _Page(data)
    body = [
        page.summary(),
        data.lead,
        page.activity(),
        page.findings(),
        page.posts(),
        page.annex(),
    ]
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Evidence report: {_e(data.asked_for)}</title><style>{_STYLE}</style>"
        "</head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


class _Page:
    def __init__(self, data: ReportInput) -> None:
        self.data = data
        self.anchors = {p.key: f"post-{n}" for n, p in enumerate(data.findings.posts, start=1)}
        self.posts_by_key = {p.key: p for p in data.findings.posts}
        self.capture_ids = {c["id"] for c in data.captures}

    # -- summary --------------------------------------------------------------------------
    def summary(self) -> str:
        d, n = self.data, counts(self.data)
        times = sorted(c["started_at"] for c in d.captures)
        browsers = sorted({c.get("browser_version") or "" for c in d.captures} - {""})
        versions = sorted({c.get("watcher_version") or "" for c in d.captures} - {""})
        part = f" — part {d.part} of {d.parts}" if d.parts > 1 else ""
        rows = [
            ("What was asked for", _e(d.asked_for)),
            ("Collected by", _e(", ".join(d.operators) or "unnamed operator")),
            (
                "Collected with",
                _e(
                    f"watcher {', '.join(versions) or d.watcher_version}"
                    + (f", Chromium {', '.join(browsers)}" if browsers else "")
                    + " (each page loaded in a fresh browser, its screenshot, HTML and web "
                    "archive hashed with SHA-256 when taken)"
                ),
            ),
            (
                "Captures taken",
                f"{_t(times[0])} to {_t(times[-1])}" if times else "none",
            ),
            ("Exported", f"{_t(d.exported_at)} with watcher {_e(d.watcher_version)}"),
        ]
        facts = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
        figures = [
            ("accounts", n.targets, False, "#activity"),
            (
                "captures" + (f" ({n.captures_failed} failed)" if n.captures_failed else ""),
                n.captures,
                False,
                "#annex",
            ),
            ("posts", n.posts, False, "#posts"),
            ("deleted", n.deleted, True, "#deletions"),
            ("back after deletion", n.restored, True, "#returns"),
            ("edited", n.edited, True, "#edits"),
            ("photos", n.photos, False, "#posts"),
            (f"posts with keywords ({n.keyword_hits} hits)", n.keyword_posts, True, "#keywords"),
            ("photos also on other accounts", n.photos_elsewhere, True, "#photos"),
            ("contacts shared with other accounts", n.shared_contacts, True, "#contacts"),
        ]
        boxes = "".join(
            f"<a class='count{' alert' if alert and value else ''}' href='{href}'>"
            f"<b>{value}</b>{_e(label)}</a>"
            for label, value, alert, href in figures
        )
        return (
            f"<header id=summary><p class=mute>watcher evidence bundle{part}</p>"
            f"<h1>Evidence report</h1><p>{_e(d.asked_for)}</p></header>"
            "<h2 class=first>Summary</h2>"
            f"<table class=facts>{facts}</table>"
            f"<div class=counts>{boxes}</div>"
            + _how_to_check(d.fingerprint)
            + "<p class=mute>All times are UTC. The dealers' pages are kept as text "
            "(<code>.html.txt</code>): opening them runs none of their scripts; the web archive "
            "(<code>.wacz</code>) of each capture replays the page in ReplayWeb.page "
            "(replayweb.page, or its desktop app), which runs offline from the file. Where a "
            "capture's metadata has <code>screenshot_layout</code>, its screenshot was drawn "
            "with each post box a whole number of pixels high (less than one pixel of blank "
            "space below each, and above the page), so that unchanged posts are stored once; "
            "the text, photos and order are as the browser drew them.</p>" + _contents()
        )

    # -- activity -------------------------------------------------------------------------
    def activity(self) -> str:
        out = ["<h2 id=activity>Activity of each account</h2>"]
        out.append(
            "<p class=mute>Blue bars: posts by the day they were posted (by the day watcher "
            "first saw them when the page gives no date). Red marks under the axis: the day a "
            "capture found posts deleted; green: found back.</p>"
        )
        for target in sorted({c["target"] for c in self.data.captures}):
            posts = [p for p in self.data.findings.posts if p.target == target]
            urls = sorted(
                {c.get("requested_url") or "" for c in self.data.captures if c["target"] == target}
                - {""}
            )
            svg = activity_svg(
                target,
                [p.versions[0].posted_at or p.first_seen_at for p in posts],
                [c.at for p in posts for c in p.visibility if c.change == "deleted"],
                [c.at for p in posts for c in p.visibility if c.change == "restored"],
            )
            out.append(
                f"<h3>{_e(target)}</h3><p class=meta>{_e(', '.join(urls))} · {len(posts)} "
                f"posts</p>{svg or '<p class=mute>no dated posts</p>'}"
            )
        return "\n".join(out)

    # -- findings -------------------------------------------------------------------------
    def findings(self) -> str:
        posts = self.data.findings.posts
        out = ["<h2 id=findings>Findings</h2>"]
        out.append("<h3 id=deletions>Posts deleted</h3>")
        deleted = [(p, c) for p in posts for c in p.visibility if c.change == "deleted"]
        out += [self._deletion(p, c) for p, c in deleted] or [_none("No post was deleted.")]
        out.append("<h3 id=returns>Deleted posts that came back</h3>")
        back = [(p, c) for p in posts for c in p.visibility if c.change == "restored"]
        out += [self._return(p, c) for p, c in back] or [_none("No deleted post came back.")]
        out.append("<h3 id=edits>Posts edited</h3>")
        edits = [(p, v) for p in posts for v in p.versions[1:]]
        out += [self._edit(p, v) for p, v in edits] or [_none("No post was edited.")]
        out.append("<h3 id=keywords>Keywords found</h3>")
        hits = [self._keywords(p, v) for p in posts for v in p.versions if v.keywords]
        hits += [self._photo_keywords(k) for k in self.data.findings.photo_keywords]
        out += hits or [_none("No keyword was found.")]
        out.append("<h3 id=photos>Photos seen on other posts</h3>")
        out += [self._photo(m) for m in self.data.findings.photos_seen_before] or [
            _none("No photo was seen on another post.")
        ]
        out.append("<h3 id=contacts>Contacts shared with other accounts</h3>")
        out += [self._contact(c) for c in self.data.findings.contacts] or [
            _none("No phone number or handle was seen on another account.")
        ]
        return "\n".join(out)

    def _deletion(self, post: ReportPost, change) -> str:
        last = post.last_sighting_before(change.capture_id)
        copy = post.version_at(last.capture_id) if last else post.latest
        when = f"last seen {_t(last.at)} (capture #{last.capture_id}), " if last else ""
        return (
            f"<div class='finding deleted'><b>{self._link(post)}</b> was deleted: {when}"
            f"found gone {_t(change.at)} (capture #{change.capture_id}).<br>"
            f"<span class=meta>Last copy kept (version {copy.version}, first seen "
            f"{_t(copy.seen_at)}):</span>"
            f"<div class=text>{_e(copy.text)}</div>{self._thumbs(copy.image_shas)}</div>"
        )

    def _return(self, post: ReportPost, change) -> str:
        earlier = [
            c for c in post.visibility if c.change == "deleted" and c.capture_id < change.capture_id
        ]
        gone = earlier[-1] if earlier else None
        since = f"found deleted {_t(gone.at)} (capture #{gone.capture_id}), " if gone else ""
        return (
            f"<div class='finding restored'><b>{self._link(post)}</b> came back: {since}"
            f"on the page again {_t(change.at)} (capture #{change.capture_id}). The deletion "
            "and the return are both kept.</div>"
        )

    def _edit(self, post: ReportPost, version: ReportVersion) -> str:
        index = post.versions.index(version)
        before = post.versions[index - 1]
        changes = []
        if before.text != version.text:
            changes.append(f"<div class=text>{_diff_html(before.text, version.text)}</div>")
        added = [s for s in version.image_shas if s and s not in before.image_shas]
        removed = [s for s in before.image_shas if s and s not in version.image_shas]
        if removed:
            changes.append(f"<p class=meta>Photos removed:</p>{self._thumbs(removed)}")
        if added:
            changes.append(f"<p class=meta>Photos added:</p>{self._thumbs(added)}")
        return (
            f"<div class='finding edited'><b>{self._link(post)}</b>: version "
            f"{version.version}, seen {_t(version.seen_at)} (capture #{version.capture_id}); "
            f"the version before was first seen {_t(before.seen_at)}. "
            "<span class=meta>Removed words are <del>struck</del>, added ones "
            "<ins>underlined</ins>.</span>"
            + "".join(changes or ["<p>(no visible change)</p>"])
            + "</div>"
        )

    def _keywords(self, post: ReportPost, version: ReportVersion) -> str:
        groups = sorted({h.group for h in version.keywords})
        terms = ", ".join(dict.fromkeys(h.text for h in version.keywords))
        which = f" (version {version.version})" if len(post.versions) > 1 else ""
        return (
            f"<div class='finding keyword'><b>{self._link(post)}</b>{which}: "
            f"{_e(terms)} <span class=meta>— lexicon groups: {_e(', '.join(groups))}</span>"
            f"<div class=text>{_highlight(version.text, version.keywords)}</div></div>"
        )

    def _photo_keywords(self, found: PhotoKeywords) -> str:
        groups = sorted({h.group for h in found.keywords})
        terms = ", ".join(dict.fromkeys(h.text for h in found.keywords))
        return (
            f"<div class='finding keyword in-photo'><b>{self._link_key(found.post)}</b>: "
            f"{_e(terms)} <b>in the photo</b> <span class=hash>{_e(found.image_sha256[:12])}"
            f"</span> <span class=meta>— lexicon groups: {_e(', '.join(groups))}; read "
            f"{_t(found.read_at)} (event #{found.event_id})</span>"
            f"<div class=read>{self._img(found.image_sha256)}<div class=text>"
            f"{_highlight(found.text, found.keywords)}</div></div></div>"
        )

    def _photo(self, match) -> str:
        distance = (
            "the same file"
            if match.first_sha == match.later_sha
            else f"pHash distance {match.distance} of 64 bits"
        )
        where = "another account" if match.other_account else "an earlier post of the same account"
        first = self.posts_by_key.get(match.first)
        later = self.posts_by_key.get(match.later)
        return (
            f"<div class='finding photo'>A photo of <b>{self._link_key(match.later)}</b> was "
            f"first seen on {where}, <b>{self._link_key(match.first)}</b> ({distance}; 0 is "
            "identical, the same photo resized, recompressed, cropped or watermarked stays "
            "under 10, unrelated photos are 20 or more).<div class=pair>"
            + self._side("first seen", match.first, match.first_sha, match.first_seen_at, first)
            + self._side("later", match.later, match.later_sha, match.later_seen_at, later)
            + "</div></div>"
        )

    def _side(self, label, key, sha, seen_at, post) -> str:
        text = ""
        if post is not None:
            version = next((v for v in post.versions if sha in v.image_shas), post.latest)
            text = f"<div class=text>{_e(_short(version.text, 300))}</div>"
        return (
            f"<figure>{self._img(sha)}<figcaption>{_e(label)}: {self._link_key(key)}"
            + (f", {_t(seen_at)}" if seen_at else "")
            + f"<br><span class=hash>{_e(sha)}</span></figcaption>{text}</figure>"
        )

    def _contact(self, link) -> str:
        kinds = ", ".join(link.kinds or [link.kind])
        rows = "".join(
            f"<li>{_e(target)}: {self._link_key((target, post_id))}, first written {_t(seen)}</li>"
            for target, post_id, seen in link.posts
        )
        return (
            f"<div class='finding contact'><b>{_e(link.value)}</b> ({_e(kinds)}) appears on "
            f"{len(link.targets)} accounts: {_e(', '.join(link.targets))}<ul>{rows}</ul></div>"
        )

    # -- posts ----------------------------------------------------------------------------
    def posts(self) -> str:
        out = [f"<h2 id=posts>Posts ({len(self.data.findings.posts)})</h2>"]
        out.append(
            "<p class=mute>Each post as watcher kept it: every version of its text, its "
            "photos (the original files, with their SHA-256 and perceptual hash), and where the "
            "page's layout allowed, the post cut out of the capture's screenshot.</p>"
        )
        for target in sorted({p.target for p in self.data.findings.posts}):
            out.append(f"<h3>{_e(target)}</h3>")
            out += [self._post(p) for p in self.data.findings.posts if p.target == target]
        return "\n".join(out)

    def _post(self, post: ReportPost) -> str:
        latest = post.latest
        changes = {c.change for c in post.visibility}
        badges = ""
        if post.deleted_at:
            badges += "<span class='badge deleted'>DELETED</span>"
        elif "deleted" in changes:
            badges += "<span class='badge deleted'>WAS DELETED</span>"
        if "restored" in changes:
            badges += "<span class='badge restored'>BACK</span>"
        if len(post.versions) > 1:
            badges += f"<span class='badge edited'>EDITED ({len(post.versions)} versions)</span>"
        if any(v.keywords for v in post.versions):
            badges += "<span class='badge keyword'>KEYWORDS</span>"
        if any(k.post == post.key for k in self.data.findings.photo_keywords):
            badges += "<span class='badge keyword'>KEYWORDS IN PHOTO</span>"
        if any(post.key in (m.first, m.later) for m in self.data.findings.photos_seen_before):
            badges += "<span class='badge photo'>PHOTO SEEN ELSEWHERE</span>"
        meta = [
            f"posted {_t(latest.posted_at)}" if latest.posted_at else "no date on the page",
            f"first seen {_t(post.first_seen_at)}",
            f"last seen {_t(post.last_seen_at)}",
        ]
        if latest.author:
            meta.insert(0, f"by {_e(latest.author)}")
        lines = [
            f"<section class='post{' deleted' if post.deleted_at else ''}' "
            f"id={self.anchors[post.key]}>",
            f"<b>{_e(post.target)}</b> · post <code>{_e(post.post_id)}</code>{badges}",
            f"<div class=meta>{' · '.join(meta)}</div>",
        ]
        if latest.permalink:
            lines.append(
                f"<div class=meta>address on the platform (not a link: opening it would show "
                f"the account who is looking): <code>{_e(latest.permalink)}</code></div>"
            )
        for change in post.visibility:
            word = "found deleted" if change.change == "deleted" else "found back"
            lines.append(
                f"<div class=meta><b>{word}</b> {_t(change.at)} (capture "
                f"{self._capture_ref(change.capture_id)})</div>"
            )
        crop = self.data.crops.get(post.key)
        if crop:
            lines.append(
                f"<figure class=shot><img src='{_e(crop.path)}' alt='the post on the page'>"
                f"<figcaption>The post as the page showed it in capture "
                f"{self._capture_ref(crop.capture_id)}: cut at export from the "
                f"<a href='{_e(crop.screenshot_path)}'>full screenshot</a> "
                f"(SHA-256 <span class=hash>{_e(crop.screenshot_sha)}</span>).</figcaption>"
                "</figure>"
            )
        else:
            shots = self._screenshots_of(post)
            if shots:
                lines.append(f"<div class=meta>On the page: {shots}.</div>")
        for version in reversed(post.versions):
            if len(post.versions) > 1:
                label = "current version" if version is latest else f"version {version.version}"
                if post.deleted_at and version is latest:
                    label = f"last version (version {version.version})"
                lines.append(
                    f"<div class=meta><b>{label}</b>, first seen {_t(version.seen_at)} "
                    f"(capture {self._capture_ref(version.capture_id)})</div>"
                )
            lines.append(f"<div class=text>{_highlight(version.text, version.keywords)}</div>")
            # Photos under the current version; under an older one only where they differ.
            index = post.versions.index(version)
            newer = post.versions[index + 1] if index + 1 < len(post.versions) else None
            shas = [s for s in version.image_shas if s]
            if shas and (newer is None or newer.image_shas != version.image_shas):
                lines.append(self._photos(shas))
        lines.append("</section>")
        return "\n".join(lines)

    def _screenshots_of(self, post: ReportPost) -> str:
        seen = []
        by_id = {c["id"]: c for c in self.data.captures}
        for sighting in post.sightings[-3:]:
            capture = by_id.get(sighting.capture_id)
            shot = _artifact(capture, "screenshot") if capture else None
            if shot:
                total = self.data.findings.posts_per_capture.get(sighting.capture_id, 0)
                seen.append(
                    f"<a href='{_e(shot['path'])}'>screenshot of capture "
                    f"#{sighting.capture_id}</a> (post {sighting.position + 1} of {total})"
                )
        return ", ".join(seen)

    def _photos(self, shas: list[str]) -> str:
        figures = []
        for sha in shas:
            facts = self.data.findings.images.get(sha)
            detail = []
            if facts and facts.width:
                detail.append(f"{facts.width}×{facts.height} px")
            if facts and facts.size:
                detail.append(f"{facts.size:,} bytes")
            if facts and facts.phash:
                detail.append(f"pHash {facts.phash}")
            figures.append(
                f"<figure>{self._img(sha)}<figcaption>{_e(' · '.join(detail))}<br>SHA-256 "
                f"<span class=hash>{_e(sha)}</span></figcaption></figure>"
            )
        return f"<div class=photos>{''.join(figures)}</div>"

    # -- annex ----------------------------------------------------------------------------
    def annex(self) -> str:
        out = [
            "<h2 id=annex>Annex: captures and hashes</h2>",
            "<p class=mute>Every file of the bundle with its SHA-256, as the manifest lists "
            "it. <code>watcher verify</code> recomputes each one.</p>",
            "<h3>Captures</h3><table class=annex><tr><th>#</th><th>account</th>"
            "<th>taken</th><th>outcome</th><th>address</th><th>posts</th></tr>",
        ]
        for c in self.data.captures:
            outcome = c["status"] + (f": {c.get('reason')}" if c.get("reason") else "")
            if c.get("mode") == "check":
                outcome += " (light check: no screenshot)"
            out.append(
                f"<tr id=capture-{c['id']}><td>{c['id']}</td><td>{_e(c['target'])}</td>"
                f"<td>{_t(c['started_at'])}<br><span class=mute>to {_t(c['ended_at'])}</span>"
                f"</td><td>{_e(outcome)}</td><td><code>"
                f"{_e(c.get('final_url') or c.get('requested_url') or '')}</code></td>"
                f"<td>{self.data.findings.posts_per_capture.get(c['id'], 0)}</td></tr>"
            )
        out.append("</table><h3>Files of each capture</h3><table class=annex>")
        out.append("<tr><th>#</th><th>file</th><th>bytes</th><th>SHA-256</th></tr>")
        for c in self.data.captures:
            for a in c["artifacts"]:
                if a["kind"] == "image":
                    continue
                label = _LABELS.get(a["kind"], a["kind"])
                out.append(
                    f"<tr><td>{c['id']}</td><td><a href='{_e(a['path'])}'>{_e(label)}</a>"
                    f"<br><span class=mute>{_e(a['path'])}</span></td><td>{a['size']:,}</td>"
                    f"<td class=hash>{_e(a['sha256'])}</td></tr>"
                )
        out.append("</table><h3>Photos</h3><table class=annex>")
        out.append("<tr><th>file</th><th>bytes</th><th>SHA-256</th><th>pHash / dHash</th></tr>")
        for sha, path in sorted(self.data.image_paths.items(), key=lambda item: item[1]):
            facts = self.data.findings.images.get(sha)
            hashes = f"{facts.phash or '-'} / {facts.dhash or '-'}" if facts else "-"
            size = f"{facts.size:,}" if facts and facts.size else ""
            out.append(
                f"<tr><td><a href='{_e(path)}'>{_e(path.split('/')[-1][:12])}…</a></td>"
                f"<td>{size}</td><td class=hash>{_e(sha)}</td><td class=hash>{_e(hashes)}</td>"
                "</tr>"
            )
        out.append("</table>")
        if self.data.other_files:
            out.append("<h3>Other files</h3><table class=annex>")
            out.append("<tr><th>file</th><th>SHA-256</th></tr>")
            for path, sha in sorted(self.data.other_files.items()):
                out.append(f"<tr><td>{_e(path)}</td><td class=hash>{_e(sha)}</td></tr>")
            out.append("</table>")
        return "\n".join(out)

    # -- links and pictures -----------------------------------------------------------------
    def _link(self, post: ReportPost) -> str:
        return self._link_key(post.key)

    def _link_key(self, key: tuple[str, str]) -> str:
        anchor = self.anchors.get(key)
        name = f"{key[0]} / {key[1]}"
        if anchor is None:
            return f"{_e(name)} <span class=mute>(not in this bundle)</span>"
        return f"<a href='#{anchor}'>{_e(name)}</a>"

    def _capture_ref(self, capture_id: int) -> str:
        if capture_id in self.capture_ids:
            return f"<a href='#capture-{capture_id}'>#{capture_id}</a>"
        return f"#{capture_id} <span class=mute>(not in this bundle)</span>"

    def _img(self, sha: str) -> str:
        path = self.data.image_paths.get(sha)
        if path is None:
            return "<p class=mute>(photo not kept)</p>"
        return f"<a href='{_e(path)}'><img src='{_e(path)}' alt='photo {_e(sha[:12])}'></a>"

    def _thumbs(self, shas) -> str:
        shown = [s for s in shas if s]
        return self._photos(shown) if shown else ""


def _how_to_check(fingerprint: str) -> str:
    grouped = " ".join(fingerprint[i : i + 4] for i in range(0, len(fingerprint), 4))
    return (
        "<div class=key id=checking><h3>Checking this bundle</h3><p>The bundle says it was "
        f"signed with the key whose fingerprint is <code class=fp>{_e(grouped)}</code>. "
        "This page is part of the bundle: whoever altered the bundle could alter this page "
        "too, so do not take the fingerprint from here. Get it from the team that collected "
        "the evidence, through a channel you trust: the signed letter that came with the "
        "evidence, the team's own website, or a team member on the phone at a number you "
        "found yourself (they print it with <code>watcher key</code>). Then run</p>"
        "<pre>watcher verify BUNDLE.zip --key FINGERPRINT</pre><p><b>VERIFIED</b> means "
        "every file is exactly as exported and was signed with that key. Timestamps are "
        "checked with <code>--tsa-ca</code> and the certificate your timestamp authority "
        "publishes.</p></div>"
    )


def _contents() -> str:
    items = [
        ("activity", "Activity of each account"),
        ("deletions", "Posts deleted"),
        ("returns", "Deleted posts that came back"),
        ("edits", "Posts edited"),
        ("keywords", "Keywords found"),
        ("photos", "Photos seen on other posts"),
        ("contacts", "Contacts shared with other accounts"),
        ("posts", "Posts"),
        ("annex", "Annex: captures and hashes"),
    ]
    links = "".join(f"<li><a href='#{a}'>{_e(t)}</a></li>" for a, t in items)
    return f"<h3>Contents</h3><ol class=toc>{links}</ol>"


def _diff_html(before: str, after: str) -> str:
    tags = {"del": "del", "ins": "ins"}
    out = []
    for segment in word_diff(before, after):
        if segment.op in tags:
            out.append(f"<{tags[segment.op]}>{_e(segment.text)}</{tags[segment.op]}>")
        else:
            out.append(_e(segment.text))
    return " ".join(out)


def _highlight(text: str, hits: tuple[KeywordHit, ...] | list[KeywordHit]) -> str:
    """The text with each keyword hit marked; a long text shows only the hits in context."""
    spans, end = [], -1
    for hit in sorted(hits, key=lambda h: (h.start, -h.end)):
        if hit.start >= end and 0 <= hit.start < hit.end <= len(text):
            spans.append(hit)
            end = hit.end
    if not spans:
        return _e(text)
    windows = [(0, len(text))]
    if len(text) > LONG_TEXT:
        windows = []
        for hit in spans:
            start, stop = max(0, hit.start - HIT_CONTEXT), min(len(text), hit.end + HIT_CONTEXT)
            if windows and start <= windows[-1][1]:
                windows[-1] = (windows[-1][0], stop)
            else:
                windows.append((start, stop))
    out = []
    for start, stop in windows:
        if start > 0:
            out.append("… ")
        cursor = start
        for hit in spans:
            if hit.start < start or hit.end > stop:
                continue
            out.append(_e(text[cursor : hit.start]))
            out.append(
                f"<mark title='{_e(hit.group)}: {_e(hit.term)}'>"
                f"{_e(text[hit.start : hit.end])}</mark>"
            )
            cursor = hit.end
        out.append(_e(text[cursor:stop]))
        if stop < len(text):
            out.append(" …")
    return "".join(out)


def _artifact(capture: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((a for a in capture["artifacts"] if a["kind"] == kind), None)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rstrip() + " …"


def _none(text: str) -> str:
    return f"<p class=mute>{_e(text)}</p>"


def _t(moment: str | None) -> str:
    return _e(human_time(moment))


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)
