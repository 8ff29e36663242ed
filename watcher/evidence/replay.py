"""A capture's WACZ made whole for a bundle: its revisit records' payloads put back.

A capture's stored WACZ writes a payload the archive already held as a WARC ``revisit`` record
(:mod:`watcher.capture.dedup`); opened alone, such an archive would show the page without its
photos. For a bundle, :func:`self_contained_wacz` makes a WACZ that replays on its own:

- ``archive/capture.warc.gz``: the WARC as collected, byte for byte (its SHA-256 is the one in
  the collected WACZ's datapackage);
- ``archive/restored.warc.gz``: for each revisit, a full record with the revisit's own URL,
  time, status and headers and the payload the archive holds (its SHA-256 is checked against
  the revisit's WARC-Payload-Digest before it is written);
- an index that sends replay to the full records (the revisits stay in the WARC, unindexed).

The collected WACZ goes into the bundle too, unchanged, for its hash taken at collection.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from warcio.archiveiterator import ArchiveIterator
from warcio.warcwriter import WARCWriter

from watcher.capture.archive import (
    REVISIT_MIME,
    SOFTWARE,
    WaczSigner,
    cdxj_lines,
    package_wacz,
    write_warc,
)
from watcher.errors import WatcherError
from watcher.store.blobs import BlobStore
from watcher.store.db import Store
from watcher.store.payloads import StoredPayload, stored_payloads

RESTORED_WARC = "restored.warc.gz"
_INDEX = "indexes/index.cdx"


@dataclass(frozen=True, slots=True)
class Payload:
    """An archived payload's bytes and, when the archive knows it, its media type."""

    data: bytes
    media_type: str | None = None


PayloadSource = Callable[[str], Payload]


class ArchivedPayloads:
    """Reads archived payloads by SHA-256: from the blob store, or out of the full WARC record
    of an earlier capture's WACZ that first held them."""

    def __init__(self, store: Store, blobs: BlobStore) -> None:
        self.store = store
        self.blobs = blobs
        self._warcs: dict[str, bytes] = {}  # WACZ sha256 -> its WARC, read once per export

    def __call__(self, sha256: str) -> Payload:
        stored = stored_payloads(self.store, [sha256]).get(sha256)
        if self.blobs.has(sha256):
            data = self.blobs.read(sha256)
        elif stored is not None and stored.wacz_sha256:
            data = self._from_warc(stored)
        else:
            raise WatcherError(
                f"the archive holds no payload {sha256} that a web archive refers to; the "
                "data folder is incomplete (restore data/blobs from the backup)"
            )
        if hashlib.sha256(data).hexdigest() != sha256:
            raise WatcherError(
                f"the archived payload {sha256} is damaged (its bytes no longer match their "
                "SHA-256); restore data/blobs from the backup"
            )
        return Payload(data, stored.media_type if stored else None)

    def _from_warc(self, stored: StoredPayload) -> bytes:
        wacz = str(stored.wacz_sha256)
        if wacz not in self._warcs:
            with zipfile.ZipFile(io.BytesIO(self.blobs.read(wacz))) as archive:
                name = next(n for n in archive.namelist() if n.endswith(".warc.gz"))
                self._warcs[wacz] = archive.read(name)
        offset, length = int(stored.warc_offset or 0), int(stored.warc_length or 0)
        record = _record_at(self._warcs[wacz], offset, length)
        return record.raw_stream.read()


def revisit_count(wacz: bytes) -> int:
    """How many revisit records a WACZ's index lists."""
    with zipfile.ZipFile(io.BytesIO(wacz)) as archive:
        if _INDEX not in archive.namelist():
            return 0
        return sum(1 for line in _index_lines(archive) if _fields(line).get("mime") == REVISIT_MIME)


def self_contained_wacz(
    wacz: bytes, payloads: PayloadSource, signer: WaczSigner | None = None
) -> bytes | None:
    """``wacz`` with its revisits' payloads put back (see the module's docstring); None when
    it has no revisit, and so replays on its own already. Signed by ``signer`` (the same
    announced key that signed the collected one), so a reader's tool sees it signed too."""
    with zipfile.ZipFile(io.BytesIO(wacz)) as archive:
        lines = _index_lines(archive)
        revisits = [line for line in lines if _fields(line).get("mime") == REVISIT_MIME]
        if not revisits:
            return None
        package = json.loads(archive.read("datapackage.json"))
        pages = archive.read("pages/pages.jsonl")
        warcs = {n.removeprefix("archive/"): archive.read(n) for n in _warc_names(archive)}
    restored = write_warc(lambda writer: _restored(writer, revisits, warcs, payloads))
    kept = [line for line in lines if _fields(line).get("mime") != REVISIT_MIME]
    index = kept + cdxj_lines(restored.index, RESTORED_WARC)
    return package_wacz(
        [*warcs.items(), (RESTORED_WARC, restored.data)],
        index,
        pages,
        str(package.get("mainPageUrl") or ""),
        str(package.get("title") or ""),
        str(package["created"]),
        str(package.get("mainPageDate") or package["created"]),
        signer,
    )


def _restored(
    writer: WARCWriter, revisits: list[str], warcs: dict[str, bytes], payloads: PayloadSource
) -> Iterator[Any]:
    info = {
        "software": SOFTWARE,
        "format": "WARC File Format 1.1",
        "description": (
            "Full records for the revisit records of the other WARC of this WACZ: each keeps "
            "its revisit's URL, date, status and headers, with the payload the archive holds "
            "under its WARC-Payload-Digest (SHA-256 checked when this file was made)."
        ),
    }
    yield writer.create_warcinfo_record(None, info)
    for line in revisits:
        fields = _fields(line)
        revisit = _record_at(
            warcs[fields["filename"]], int(fields["offset"]), int(fields["length"])
        )
        headers = revisit.rec_headers
        digest = headers.get_header("WARC-Payload-Digest") or ""
        if not digest.startswith("sha256:"):
            raise WatcherError(f"a revisit record has no SHA-256 payload digest: {digest!r}")
        payload = payloads(digest.removeprefix("sha256:"))
        warc_headers = {"WARC-Date": headers.get_header("WARC-Date")}
        if headers.get_header("WARC-IP-Address"):
            warc_headers["WARC-IP-Address"] = headers.get_header("WARC-IP-Address")
        uri = headers.get_header("WARC-Target-URI")
        http = revisit.http_headers
        yield writer.create_warc_record(
            uri,
            "response" if http is not None else "resource",
            payload=io.BytesIO(payload.data),
            length=len(payload.data),
            warc_headers_dict=warc_headers,
            http_headers=http,
            warc_content_type="" if http is not None else _media(payload),
        )


def _media(payload: Payload) -> str:
    return payload.media_type or "application/octet-stream"


def _record_at(warc: bytes, offset: int, length: int) -> Any:
    """The WARC record whose gzip member is ``warc[offset:offset + length]``, headers parsed."""
    stream = ArchiveIterator(io.BytesIO(warc[offset : offset + length]))
    for record in stream:
        return record
    raise WatcherError(f"no WARC record at offset {offset}: the archive is damaged")


def _warc_names(archive: zipfile.ZipFile) -> list[str]:
    return [n for n in archive.namelist() if n.startswith("archive/") and n.endswith(".warc.gz")]


def _index_lines(archive: zipfile.ZipFile) -> list[str]:
    text = archive.read(_INDEX).decode("utf-8")
    return [line + "\n" for line in text.splitlines() if line.strip()]


def _fields(line: str) -> dict[str, str]:
    """The JSON part of a CDXJ line (``<surt> <time> <json>``)."""
    return json.loads(line.split(" ", 2)[2])
