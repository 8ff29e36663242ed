"""Export evidence bundles: every file of the selected captures, hashed, signed, with a report.

A bundle is a zip holding ``manifest.json`` (SHA-256 and size of every other file),
``manifest.sig`` (the manifest signed with the custody key), the custody log up to the
moment of export (its own captures' entries in full, every other entry as its signed header
alone, so a bundle for one case names nothing of another), the public key(s), the captures'
files, the original images, ``posts.json`` (every version of every post) and ``index.html``
(a report that opens offline).
Bundles over ``max_bytes`` are split by capture into parts that each verify on their own.

A bundle never appears half-written under its name, even when the export is killed: every part
is written to a hidden ``.<name>.<random>.partial`` file in the output folder, flushed to disk,
and only once every part is complete are they all renamed to their ``.zip`` names (a rename in
one folder is atomic). The writer holds an exclusive ``flock`` on its partial files; the next
export in that folder removes partial files whose writer is gone (lock free, not touched for a
while). Bundle names are never reused: an export never replaces an earlier bundle.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from watcher import __version__
from watcher.app import App
from watcher.detect.dealers import Rules
from watcher.errors import WatcherError
from watcher.evidence.crops import crop_png, post_boxes
from watcher.evidence.dossier import gather, photo_shas, render_dossier
from watcher.evidence.replay import ArchivedPayloads, PayloadSource, self_contained_wacz
from watcher.evidence.report import Crop, ReportInput, render_report
from watcher.models import Artifact
from watcher.store.blobs import sha256_hex
from watcher.store.custody import redact
from watcher.store.findings import Findings, report_findings
from watcher.store.timestamp import request_timestamp, timestamp_gen_time
from watcher.timeutil import human_time, utc_now

# 2: the custody log travels redacted (see watcher.store.custody); verify reads 1 and 2.
FORMAT = "watcher-bundle-2"
DEFAULT_MAX_BYTES = 1_900_000_000  # under 2 GB: what a self-hosted Bot API server can upload
PARTIAL_SUFFIX = ".partial"
# A partial file whose lock is free is left alone this long after its last write: its writer
# may have created it a moment ago and not locked it yet (a gap of microseconds).
STALE_PARTIAL_S = 5.0
_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    # A kept page opened from the unzipped bundle would run the dealer's scripts and call
    # their servers (a CSP meta tag cannot be trusted to come before a script): pages are
    # shipped as text. The WACZ replays them in a tool made for it.
    "text/html": "html.txt",
    "application/json": "json",
    "application/wacz": "wacz",
    "application/zip": "zip",
    "multipart/related": "mhtml",
    "application/x-telegram-tl": "tl",  # messages as Telegram serialised them (issue 24)
}
_NAMES = {
    "screenshot": "screenshot",
    "error_screenshot": "error-screenshot",
    "html": "page",
    "posts": "posts",
    "metadata": "metadata",
    "wacz": "archive",
    "mhtml": "snapshot",
    "detail_html": "listing-page",
    "detail_screenshot": "listing-screenshot",
    # Read through a Telegram account: watcher's rendering, never a page, and the messages.
    "rendering_screenshot": "telegram-api-rendering",
    "rendering_html": "telegram-api-rendering",
    "api_messages_tl": "telegram-api-messages",
    "api_messages_json": "telegram-api-messages",
}


@dataclass(frozen=True, slots=True)
class Selection:
    """What to export; every given filter must hold."""

    target: str | None = None
    tag: str | None = None
    since: str | None = None
    until: str | None = None
    post_id: str | None = None
    capture_id: int | None = None
    dealer: str | None = None  # a dealer's dossier: ``targets`` are its watched pages
    targets: tuple[str, ...] | None = None

    def describe(self) -> dict[str, object]:
        """The filters that were set."""
        return {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) is not None}

    def in_words(self) -> str:
        """The filters as a person reads them: ``target dealer, since 2026-11-01T00:00:00Z``."""
        words = {"post_id": "post", "capture_id": "capture"}
        parts = [
            f"{words.get(k, k)} {', '.join(v) if isinstance(v, tuple) else v}"
            for k, v in self.describe().items()
            if not (k == "targets" and self.dealer)
        ]
        return ", ".join(parts) or "everything"

    def sentence(self) -> str:
        """What was asked for, as the report's reader reads it: ``Every capture of the
        account dealer taken since 1 Nov 2026, 00:00 UTC``."""
        what = []
        if self.dealer:
            what.append(
                f"of the accounts of the dealer {self.dealer} ({', '.join(self.targets or ())})"
            )
        if self.target:
            what.append(f"of the account {self.target}")
        if self.tag:
            what.append(f"of the accounts tagged {self.tag!r}")
        if self.post_id:
            what.append(f"that saw the post {self.post_id}")
        if self.since:
            what.append(f"taken since {human_time(self.since)}")
        if self.until:
            what.append(f"taken until {human_time(self.until)}")
        if self.capture_id is not None:
            return f"Capture #{self.capture_id}" + (f" {' '.join(what)}" if what else "")
        return " ".join(["Every capture", *what]) if what else "Every capture in the archive"


@dataclass(slots=True)
class _Part:
    captures: list[int] = field(default_factory=list)
    size: int = 0


def export_bundle(
    app: App,
    selection: Selection,
    out_dir: Path,
    max_bytes: int = DEFAULT_MAX_BYTES,
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Write the bundle(s) for ``selection`` into ``out_dir``; returns their paths."""
    _refuse_evidence_folder(app, out_dir)
    capture_ids = _select(app, selection)
    if not capture_ids:
        raise WatcherError(f"nothing to export: no capture matches {selection.in_words()}")
    parts = _split(app, capture_ids, max_bytes)
    # An old log gets its format-upgrade entry first, so its old entries can be withheld too.
    app.custody.upgrade()
    custody = app.custody.entries()
    stamp_files = _timestamp_head(app, custody)
    stamp = utc_now().replace(":", "").replace("-", "").split(".")[0] + "Z"
    label = _label(selection)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(out_dir)
    done, total = 0, sum(len(p.captures) for p in parts)
    with contextlib.ExitStack() as partials:
        written: list[_Partial] = []
        for number, part in enumerate(parts, start=1):
            name = _bundle_name(label, stamp, number, len(parts))
            partial = partials.enter_context(_Partial.create(out_dir, name))
            _write_part(
                app, partial, part.captures, selection, custody, number, len(parts), stamp_files
            )
            written.append(partial)
            done += len(part.captures)
            (progress or _progress_to_stderr)(done, total)
        # Every part is whole on disk: only now do they get their names, one rename each.
        paths = _publish(out_dir, written, label, stamp)
    with app.custody.transaction():
        app.custody.append(
            "exported",
            f"bundle:{paths[0].name}",
            {
                "captures": capture_ids,
                "files": [p.name for p in paths],
                "sha256": [p.sha256 for p in written],
                "selection": selection.describe(),
            },
        )
    return paths


class _Partial:
    """A part being written: a hidden, locked temp file beside its final name."""

    def __init__(self, handle, path: Path, name: str) -> None:
        self.handle = handle
        self.path = path
        self.name = name
        self.sha256 = ""

    @classmethod
    @contextlib.contextmanager
    def create(cls, out_dir: Path, name: str):
        # mkstemp: O_EXCL with a random name, so a file or link planted there is never opened.
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.", suffix=PARTIAL_SUFFIX)
        partial = cls(os.fdopen(fd, "w+b"), Path(tmp), name)
        try:
            fcntl.flock(partial.handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            yield partial
        finally:
            partial.handle.close()  # releases the lock
            partial.path.unlink(missing_ok=True)  # gone after a rename; else not wanted

    def finish(self) -> None:
        """Flush to disk (a bundle named after a power cut must hold its bytes) and hash it."""
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.seek(0)
        digest = hashlib.sha256()
        while block := self.handle.read(1 << 20):
            digest.update(block)
        self.sha256 = digest.hexdigest()


def _bundle_name(label: str, stamp: str, number: int, count: int, taken: int = 1) -> str:
    # A second export in the same second gets "-2" (and so on), never an earlier one's name.
    again = f"-{taken}" if taken > 1 else ""
    part = f"-part{number}of{count}" if count > 1 else ""
    return f"watcher-evidence-{label}-{stamp}{again}{part}.zip"


def _publish(out_dir: Path, written: list[_Partial], label: str, stamp: str) -> list[Path]:
    """Rename every finished part to its name; names already taken are never replaced."""
    count = len(written)
    for taken in range(1, 1000):
        names = [_bundle_name(label, stamp, n, count, taken) for n in range(1, count + 1)]
        if not any((out_dir / name).exists() for name in names):
            break
    else:
        raise WatcherError(f"{out_dir} already holds bundles with these names; use another --out")
    paths = []
    for partial, name in zip(written, names, strict=True):
        path = out_dir / name
        os.replace(partial.path, path)
        paths.append(path)
    _fsync_dir(out_dir)
    return paths


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be fsynced
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove_stale_partials(out_dir: Path) -> list[Path]:
    """Remove partial bundles left by killed exports (their writer's lock is free); returns them.

    Only files named like our own partials are touched; links are never followed.
    """
    removed = []
    for path in out_dir.glob(f".watcher-*.zip.*{PARTIAL_SUFFIX}"):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # fails while its writer lives
            if time.time() - os.fstat(fd).st_mtime > STALE_PARTIAL_S:
                path.unlink(missing_ok=True)
                removed.append(path)
        except OSError:
            continue
        finally:
            os.close(fd)
    return removed


def _refuse_evidence_folder(app: App, out_dir: Path) -> None:
    # Evidence is append-only: no command may put files among the blobs, custody or keys.
    target = out_dir.expanduser().resolve()
    for protected in (app.blobs.root, app.data_dir / "evidence", app.data_dir / "keys"):
        if target == protected.resolve() or protected.resolve() in target.parents:
            raise WatcherError(
                f"{out_dir} is inside watcher's evidence folder {protected}, which no command "
                "may write into; choose another --out folder"
            )


def _timestamp_head(app: App, custody: list) -> dict[str, bytes]:
    """A trusted timestamp of the custody head from the configured TSA, as bundle files.

    A TSA that is down must not stop an export the team needs now: the bundle goes out
    without a timestamp and the operator is told.
    """
    config = app.watchlist.evidence
    if not config.tsa_url or not custody:
        return {}
    head = custody[-1]
    try:
        response = request_timestamp(head.hash, config.tsa_url)
    except WatcherError as exc:
        print(f"watcher: no trusted timestamp in this bundle: {exc}", file=sys.stderr)
        return {}
    with app.custody.transaction():
        app.custody.record_timestamp(
            head.seq, config.tsa_url, response, timestamp_gen_time(response)
        )
    files = {"timestamps/head.tsr": response}
    if config.tsa_ca_file:
        files["timestamps/tsa-ca.pem"] = Path(config.tsa_ca_file).expanduser().read_bytes()
    return files


def _select(app: App, selection: Selection) -> list[int]:
    # A target may have left the watchlist since: its captures are still evidence.
    targets = [selection.target] if selection.target else None
    if selection.targets is not None:
        targets = [t for t in selection.targets if targets is None or t in targets]
    if selection.target:
        known = dict.fromkeys([t.name for t in app.watchlist.targets] + app.store.target_names())
        if selection.target not in known:
            raise WatcherError(
                f"nothing to export: no target named {selection.target}; "
                f"known: {', '.join(known) or 'none yet'}"
            )
    if selection.tag:
        tagged = [t.name for t in app.watchlist.targets if selection.tag in t.tags]
        if not tagged:
            raise WatcherError(
                f"no target has the tag {selection.tag!r}; check `tags:` in the watchlist"
            )
        targets = [t for t in tagged if targets is None or t in targets]
    return app.store.select_capture_ids(
        targets, selection.since, selection.until, selection.post_id, selection.capture_id
    )


def _split(app: App, capture_ids: list[int], max_bytes: int) -> list[_Part]:
    parts = [_Part()]
    for capture_id in capture_ids:
        size = sum(a.size for a in app.store.artifacts(capture_id))
        if parts[-1].captures and parts[-1].size + size > max_bytes:
            parts.append(_Part())
        parts[-1].captures.append(capture_id)
        parts[-1].size += size
    return parts


def _write_part(
    app: App,
    partial: _Partial,
    capture_ids: list[int],
    selection: Selection,
    custody: list,
    number: int,
    count: int,
    stamp_files: dict[str, bytes],
) -> None:
    files: dict[str, bytes] = dict(stamp_files)
    captures = []
    payloads = ArchivedPayloads(app.store, app.blobs)
    for capture_id in capture_ids:
        captures.append(_add_capture(app, capture_id, files, payloads))
    posts = app.store.post_histories(capture_ids)
    files["posts.json"] = _json(posts)
    # Only this part's captures (and their targets' own entries: paused, resumed) travel in
    # full; another case's entries name its targets and URLs, so only their headers go.
    subjects = {f"capture:{c}" for c in capture_ids}
    subjects |= {f"target:{c['target']}" for c in captures}
    shown = redact(custody, lambda entry: entry.subject in subjects)
    files["custody.jsonl"] = "".join(
        json.dumps(e.to_json(), ensure_ascii=False, sort_keys=True) + "\n" for e in shown
    ).encode("utf-8")
    # Every key that signed the log, the rotated-from ones too: entries before a rotation
    # are checked with the key that signed them.
    for key_id, pem in app.custody.public_keys().items():
        files[f"keys/{key_id}.pem"] = pem.encode("ascii")
    files["index.html"] = _report(
        app, files, captures, capture_ids, selection, number, count
    ).encode("utf-8")
    manifest = {
        "format": FORMAT,
        "created_at": utc_now(),
        "watcher_version": __version__,
        "operator": app.watchlist.operator,
        "selection": selection.describe(),
        "part": number,
        "parts": count,
        "captures": capture_ids,
        "custody_head": shown[-1].to_json() if shown else None,
        "signing_key": app.custody.key.key_id,
        "files": {
            name: {"sha256": sha256_hex(data), "size": len(data)}
            for name, data in sorted(files.items())
        },
    }
    manifest_bytes = _json(manifest)
    signature = {
        "key_id": app.custody.key.key_id,
        "signature": app.custody.key.sign(manifest_bytes),
    }
    with zipfile.ZipFile(partial.handle, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("manifest.json", manifest_bytes)
        bundle.writestr("manifest.sig", _json(signature))
        for name, data in sorted(files.items()):
            bundle.writestr(name, data)
    partial.finish()


def _report(
    app: App,
    files: dict[str, bytes],
    captures: list[dict[str, object]],
    capture_ids: list[int],
    selection: Selection,
    number: int,
    count: int,
) -> str:
    """The report of this part; adds the files it shows that no capture carries: posts cut
    out of screenshots (``report/``) and the other side of each photo seen elsewhere."""
    findings = report_findings(app.store, capture_ids)
    image_paths = {
        a["sha256"]: a["path"] for c in captures for a in c["artifacts"] if a["kind"] == "image"
    }
    for match in findings.photos_seen_before:
        for sha in (match.first_sha, match.later_sha):
            if sha not in image_paths and sha in findings.images and app.blobs.path(sha).is_file():
                # The photo it was matched with, from a post outside the selection: shown
                # side by side, its own capture's custody entry is in custody.jsonl.
                media = findings.images[sha].media_type or ""
                image_paths[sha] = f"images/{sha}.{_EXTENSIONS.get(media, 'bin')}"
                files[image_paths[sha]] = app.blobs.read(sha)
    derived = _post_crops(app, captures, findings, files)
    lead = _dossier(app, selection, findings, image_paths, files) if selection.dealer else ""
    own = ("posts.json", "custody.jsonl")
    data = ReportInput(
        captures=captures,
        findings=findings,
        asked_for=selection.sentence(),
        operators=_operators(files, captures) or [app.watchlist.operator or ""],
        exported_at=utc_now(),
        watcher_version=__version__,
        fingerprint=app.custody.key.fingerprint,
        part=number,
        parts=count,
        image_paths=image_paths,
        crops=derived,
        other_files={
            name: sha256_hex(data)
            for name, data in files.items()
            if name in own or name.startswith(("keys/", "timestamps/", "report/"))
        },
        lead=lead,
    )
    return render_report(data)


def _dossier(
    app: App,
    selection: Selection,
    findings: Findings,
    image_paths: dict[str, str],
    files: dict[str, bytes],
) -> str:
    """The dealer section the report leads with; adds the shared photos it shows that this
    part's captures do not carry (their own captures' custody entries are in the log)."""
    rules = Rules(common_after=app.watchlist.dealers.common_after)
    data = gather(app.store, selection.dealer or "", rules, list(findings.posts), image_paths)
    for sha in photo_shas(data.dealer):
        if sha not in image_paths and app.blobs.path(sha).is_file():
            facts = app.store.stored_images({sha}).get(sha)
            media = (facts.media_type if facts else None) or ""
            image_paths[sha] = f"images/{sha}.{_EXTENSIONS.get(media, 'bin')}"
            files[image_paths[sha]] = app.blobs.read(sha)
    return render_dossier(data)


def _post_crops(
    app: App, captures: list[dict[str, object]], findings: Findings, files: dict[str, bytes]
) -> dict[tuple[str, str], Crop]:
    """Each post cut out of the screenshot of the last capture in this part that saw it."""
    shots = {
        c["id"]: a
        for c in captures
        for a in c["artifacts"]  # type: ignore[attr-defined]
        if a["kind"] == "screenshot"
    }
    boxes: dict[int, list | None] = {}
    crops = {}
    for post in findings.posts:
        sighting = next((s for s in reversed(post.sightings) if s.capture_id in shots), None)
        if sighting is None:
            continue
        shot = shots[sighting.capture_id]
        png = files[shot["path"]]
        if sighting.capture_id not in boxes:
            total = findings.posts_per_capture.get(sighting.capture_id, 0)
            places = {
                s.position
                for p in findings.posts
                for s in p.sightings
                if s.capture_id == sighting.capture_id
            }
            # One card per post, in page order: a post shown twice (pinned and in place)
            # leaves a hole in the positions, and the cards would no longer line up.
            lined_up = places == set(range(total))
            boxes[sighting.capture_id] = post_boxes(png, total) if lined_up else None
        found = boxes[sighting.capture_id]
        if not found or sighting.position >= len(found):
            continue
        path = f"report/capture-{sighting.capture_id}-post-{sighting.position + 1}.png"
        files[path] = crop_png(png, found[sighting.position])
        crops[post.key] = Crop(path, sighting.capture_id, shot["path"], shot["sha256"])
    return crops


def _operators(files: dict[str, bytes], captures: list[dict[str, object]]) -> list[str]:
    """Who collected, as each capture's collection record names them."""
    names = []
    for capture in captures:
        for artifact in capture["artifacts"]:  # type: ignore[attr-defined]
            if artifact["kind"] != "metadata":
                continue
            with contextlib.suppress(ValueError, AttributeError):  # our own JSON; be safe
                names.append(str(json.loads(files[artifact["path"]])["operator"]))
    return list(dict.fromkeys(n for n in names if n))


def _add_capture(
    app: App, capture_id: int, files: dict[str, bytes], payloads: PayloadSource
) -> dict[str, object]:
    row = app.store.capture(capture_id)
    assert row is not None
    artifacts = app.store.artifacts(capture_id)
    listed = []
    counters: dict[str, int] = {}
    replay: dict[str, object] | None = None
    for artifact in artifacts:
        name = _file_name(capture_id, artifact, counters)
        files[name] = app.blobs.read(artifact.sha256)
        whole = (
            self_contained_wacz(files[name], payloads, app.wacz_key)
            if artifact.kind == "wacz"
            else None
        )
        if whole is not None:
            # The collected WACZ refers to payloads archived before (revisit records): the
            # one to open is made whole here; the collected bytes go beside it, for their
            # hash taken at collection.
            replay = {"path": name, "sha256": sha256_hex(whole), "size": len(whole)}
            files[name] = whole
            name = name.removesuffix(".wacz") + "-as-collected.wacz"
            files[name] = app.blobs.read(artifact.sha256)
            replay["made_from"] = name
        listed.append(
            {
                "kind": artifact.kind,
                "path": name,
                "sha256": artifact.sha256,
                "size": artifact.size,
                "media_type": artifact.media_type,
                "source_url": artifact.source_url,
            }
        )
    record = {k: getattr(row, k) for k in row.__slots__}
    record["artifacts"] = listed
    if replay is not None:
        record["replay_archive"] = replay
    files[f"captures/{capture_id}/capture.json"] = _json(record)
    return record


def _file_name(capture_id: int, artifact: Artifact, counters: dict[str, int]) -> str:
    # Names come from our own records (kind, hash), never from page content.
    ext = _EXTENSIONS.get(artifact.media_type or "", "bin")
    if artifact.kind == "image":
        return f"images/{artifact.sha256}.{ext}"
    counters[artifact.kind] = counters.get(artifact.kind, 0) + 1
    base = _NAMES.get(artifact.kind, "artifact")
    n = counters[artifact.kind]
    return f"captures/{capture_id}/{base}{'' if n == 1 else f'-{n}'}.{ext}"


def _label(selection: Selection) -> str:
    """What the bundle holds, for its file name: the target, tag, post or capture, or "all".

    Tags and post ids come from users and from pages, so only ASCII letters, digits, ``-`` and
    ``_`` survive, and only 40 of them: nothing in a name can climb folders, hide the file or
    spoof its extension.
    """
    if selection.dealer:
        raw = f"dealer-{selection.dealer}"
    elif selection.target:
        raw = selection.target
    elif selection.tag:
        raw = f"tag-{selection.tag}"
    elif selection.post_id:
        raw = f"post-{selection.post_id}"
    elif selection.capture_id is not None:
        raw = f"capture-{selection.capture_id}"
    elif selection.since or selection.until:
        ends = [(w, t) for w, t in (("since", selection.since), ("until", selection.until)) if t]
        raw = "-".join(f"{word}-{moment.split('T')[0].replace('-', '')}" for word, moment in ends)
    else:
        raw = "all"
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", raw)
    safe = re.sub(r"[-_]{2,}", lambda run: run.group(0)[0], safe)
    return safe[:40].strip("_-") or "selection"


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")


def _progress_to_stderr(done: int, total: int) -> None:
    if sys.stderr.isatty():
        width = 30
        filled = int(width * done / max(total, 1))
        print(
            f"\rexporting [{'#' * filled}{'.' * (width - filled)}] {done}/{total} captures",
            end="" if done < total else "\n",
            file=sys.stderr,
            flush=True,
        )
