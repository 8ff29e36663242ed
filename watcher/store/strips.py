"""Screenshots stored once per strip, losslessly: a PNG made of independent deflate pieces.

A full-page screenshot of a changed page is mostly the last capture's pixels shifted down by
the new post. Stored whole, every capture costs the whole PNG again (~7 MiB for 200 photos).
Here the decoded pixels are cut into horizontal strips at content-defined boundaries (a row
whose hash meets a condition, with a minimum and maximum height), so the strips after an
inserted post come out byte-identical to the last capture's. Each strip is PNG-filtered
(its first row without the row above) and deflated on its own (a raw deflate stream with no
back-reference outside itself, ended by a sync flush on a byte boundary): an unchanged strip
is the same bytes, hence the same blob.

The PNG a reader gets is these pieces in order, each as one IDAT chunk, between a 2-byte zlib
header and a final empty deflate block with the adler32 of all the filtered data (combined
from the pieces' own, :func:`adler32_combine`). No other chunks, no time: the same pieces
always give the same file, so its SHA-256 is stable. The pixels are exactly the decoded
input's (checked by the tests with Pillow and Chromium).

Pure: no files. :mod:`watcher.store.blobs` stores the pieces and the manifest.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zlib
from dataclasses import dataclass

import numpy as np

FORMAT = "watcher-png-strips/1"
MAX_PIXELS = 100_000_000  # ~100 MP: a bigger screenshot is kept whole, as Chromium wrote it
# Tuned on the bench page (1280 x 9858 px, one new post): with other photos on the page,
# Chromium draws some unchanged thumbnails a little differently (up to 17 levels), so ~1,550
# rows differ besides the new post's; short strips keep the rest. New bytes for the
# one-post case: 8/15/128 with cuts at card tops 2.14 MiB (475 strips); without those cuts
# 2.18; 16/31/256 3.62 (181 strips); 4/7/64 1.97 (814 strips).
MIN_ROWS = 8  # a hash cut only in a strip this tall (a card's top always cuts) ...
MAX_ROWS = 128  # ... and no taller: a run of identical rows is still cut
_MASK = 15  # a content boundary on ~1 row in 16 that differs from the one above
LEVEL = 6  # zlib's default: ~1.3 CPU-s for 38 MB of pixels, 5 % smaller than Chromium's PNG
_BASE = 65521  # adler32's modulus
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ZLIB_HEADER = b"\x78\x9c"  # deflate, 32 KiB window, default level; (0x789c % 31 == 0)
_FINAL_BLOCK = b"\x03\x00"  # an empty fixed-Huffman block with BFINAL set
_COLOUR_TYPES = {"RGB": (2, 3), "RGBA": (6, 4)}  # Pillow mode -> (PNG colour type, channels)
_MODES = {2: "RGB", 6: "RGBA"}


class StripsError(ValueError):
    """A screenshot that cannot be re-encoded (not a PNG Pillow reads, too large, an
    unsupported pixel format), or a manifest that does not describe a PNG."""


@dataclass(frozen=True, slots=True)
class Piece:
    """One strip: its raw deflate bytes and what the PNG's adler32 needs of it."""

    data: bytes  # raw deflate, ends on a byte boundary, no final block
    rows: int
    raw_length: int  # bytes of filtered data (rows x (1 + stride))
    adler32: int  # of the filtered data, started from 1

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True, slots=True)
class Encoded:
    """A screenshot re-encoded: the pieces, the manifest's JSON bytes and the whole PNG."""

    pieces: tuple[Piece, ...]
    manifest: bytes
    png: bytes
    sha256: str  # of ``png``
    pixels_sha256: str  # of the raw pixel rows (no filter bytes), row after row
    width: int
    height: int
    mode: str  # "RGB" or "RGBA"


def adler32_combine(adler1: int, adler2: int, length2: int) -> int:
    """adler32 of A + B from adler32(A), adler32(B) and len(B) (both started from 1).

    The running sum ``a`` adds B's bytes (``a2 - 1``); the sum of sums ``b`` adds B's own plus
    ``a1 - 1`` once per byte of B, since every prefix sum within B starts from A's ``a``.
    """
    a1, b1 = adler1 & 0xFFFF, adler1 >> 16
    a2, b2 = adler2 & 0xFFFF, adler2 >> 16
    a = (a1 + a2 - 1) % _BASE
    b = (b1 + b2 + length2 * (a1 - 1)) % _BASE
    return (b << 16) | a


def decode(png: bytes) -> np.ndarray:
    """The screenshot's pixels as an (height, width, channels) uint8 array, RGB or RGBA.

    Raises :class:`StripsError` for what this encoder does not keep exactly: other pixel
    formats (palette, 16-bit, grey), or more than ``MAX_PIXELS`` (checked from the header,
    before decoding).
    """
    from PIL import Image  # Pillow loads its plugins on first use: only when re-encoding

    try:
        with Image.open(io.BytesIO(png)) as img:
            if img.format != "PNG":
                raise StripsError(f"not a PNG ({img.format})")
            if img.width * img.height > MAX_PIXELS:
                raise StripsError(
                    f"{img.width} x {img.height} px is over {MAX_PIXELS // 1_000_000} MP"
                )
            # 16-bit or palette PNGs would not round-trip as 8-bit RGB(A) exactly.
            if img.mode not in _COLOUR_TYPES or img.info.get("transparency") is not None:
                raise StripsError(f"pixel format {img.mode} is not 8-bit RGB or RGBA")
            img.load()
            return np.asarray(img, dtype=np.uint8).copy()
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        # Pillow's errors for a truncated or malformed file.
        raise StripsError(f"the PNG cannot be decoded: {exc}") from exc


def boundaries(pixels: np.ndarray) -> list[int]:
    """Where strips end (exclusive row indexes, the last is the height).

    Content decides, so after rows are inserted above, the cuts below fall on the same rows
    again. A strip ends before row ``i`` when row ``i`` differs from the row above and either
    ends a run of at least ``MIN_ROWS`` equal rows (the plain background between two post
    cards: a card's first row is a cut) or its hash is 0 modulo 16 and the strip is at least
    ``MIN_ROWS`` tall. Rows equal to the one above are never a content cut (they all hash
    alike); ``MAX_ROWS`` still cuts a long run or a long stretch without a cut, and the next
    run's end puts both captures back in step whatever those forced cuts did.
    """
    height = pixels.shape[0]
    rows = pixels.reshape(height, -1)
    same = np.all(rows[1:] == rows[:-1], axis=1)  # same[i - 1]: row i equals row i - 1
    cuts, last, run = [], 0, 1  # run: equal rows ending at the row above i
    for i in range(1, height):
        if same[i - 1]:
            run += 1
            if i - last >= MAX_ROWS:
                cuts.append(i)
                last = i
            continue
        ends_run, run = run >= MIN_ROWS, 1
        if ends_run or i - last >= MAX_ROWS:
            cut = True
        elif i - last < MIN_ROWS:
            cut = False
        else:
            digest = hashlib.blake2b(rows[i].tobytes(), digest_size=8).digest()
            cut = int.from_bytes(digest, "little") & _MASK == 0
        if cut:
            cuts.append(i)
            last = i
    cuts.append(height)
    return cuts


def filtered(strip: np.ndarray, channels: int) -> bytes:
    """The strip's rows with a PNG filter byte each, chosen per row by the usual heuristic
    (least sum of absolute signed bytes). The first row never reads the row above (None or
    Sub), so a strip's bytes depend on its own pixels only."""
    rows, stride = strip.shape[0], strip.shape[1] * channels
    x = strip.reshape(rows, stride).astype(np.int16)
    left = np.zeros_like(x)
    left[:, channels:] = x[:, :-channels]
    up = np.zeros_like(x)
    up[1:] = x[:-1]
    upleft = np.zeros_like(x)
    upleft[1:, channels:] = x[:-1, :-channels]
    # Paeth's predictor, vectorised: the neighbour nearest to left + up - upleft.
    pa, pb, pc = np.abs(up - upleft), np.abs(left - upleft), np.abs(left + up - 2 * upleft)
    paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
    candidates = np.stack([x, x - left, x - up, x - ((left + up) >> 1), x - paeth]).astype(
        np.uint8
    )  # filter types 0-4, bytes modulo 256
    cost = np.abs(candidates.view(np.int8).astype(np.int32)).sum(axis=2)  # (5, rows)
    cost[2:, 0] = np.iinfo(np.int32).max  # the first row: None or Sub only
    choice = cost.argmin(axis=0)
    out = np.empty((rows, stride + 1), dtype=np.uint8)
    out[:, 0] = choice
    out[:, 1:] = candidates[choice, np.arange(rows)]
    return out.tobytes()


def piece(strip: np.ndarray, channels: int, level: int = LEVEL) -> Piece:
    """One strip filtered and deflated on its own (no history from other strips), ended by a
    sync flush: byte-aligned, no final block, so pieces concatenate into one deflate stream."""
    raw = filtered(strip, channels)
    deflate = zlib.compressobj(level, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY)
    data = deflate.compress(raw) + deflate.flush(zlib.Z_SYNC_FLUSH)
    return Piece(data, strip.shape[0], len(raw), zlib.adler32(raw))


def encode(png: bytes, level: int = LEVEL) -> Encoded:
    """Chromium's PNG re-encoded as strips (raises :class:`StripsError` when it cannot be
    decoded exactly)."""
    pixels = decode(png)
    height, width = pixels.shape[:2]
    channels = pixels.shape[2] if pixels.ndim == 3 else 1
    mode = "RGBA" if channels == 4 else "RGB"
    pieces, start = [], 0
    for end in boundaries(pixels):
        pieces.append(piece(pixels[start:end], channels, level))
        start = end
    pixels_sha = hashlib.sha256(pixels.tobytes()).hexdigest()
    manifest = Manifest(width, height, _COLOUR_TYPES[mode][0], 8, tuple(pieces), pixels_sha)
    built = assemble(manifest, [p.data for p in pieces])
    return Encoded(
        tuple(pieces),
        manifest.to_json(),
        built,
        hashlib.sha256(built).hexdigest(),
        pixels_sha,
        width,
        height,
        mode,
    )


@dataclass(frozen=True, slots=True)
class Manifest:
    """What the composite PNG is made of (stored as a blob of its own, JSON)."""

    width: int
    height: int
    colour_type: int
    bit_depth: int
    pieces: tuple[Piece, ...]  # ``data`` empty when read back: the bytes are blobs
    pixels_sha256: str

    def to_json(self) -> bytes:
        doc = {
            "format": FORMAT,
            "width": self.width,
            "height": self.height,
            "colour_type": self.colour_type,
            "bit_depth": self.bit_depth,
            "pixels_sha256": self.pixels_sha256,
            "pieces": [
                {
                    "sha256": p.sha256,
                    "rows": p.rows,
                    "raw_length": p.raw_length,
                    "adler32": p.adler32,
                }
                for p in self.pieces
            ],
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("ascii")


@dataclass(frozen=True, slots=True)
class PieceRef:
    """A piece as the manifest names it."""

    sha256: str
    rows: int
    raw_length: int
    adler32: int


def read_manifest(data: bytes) -> tuple[Manifest, list[PieceRef]]:
    """The manifest's header and its pieces (raises :class:`StripsError` when malformed)."""
    try:
        doc = json.loads(data)
        if doc.get("format") != FORMAT:
            raise StripsError(f"unknown composite format {doc.get('format')!r}")
        refs = [
            PieceRef(str(p["sha256"]), int(p["rows"]), int(p["raw_length"]), int(p["adler32"]))
            for p in doc["pieces"]
        ]
        head = Manifest(
            int(doc["width"]),
            int(doc["height"]),
            int(doc["colour_type"]),
            int(doc["bit_depth"]),
            (),
            str(doc.get("pixels_sha256", "")),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise StripsError(f"the composite's manifest is malformed: {exc}") from exc
    return head, refs


def assemble(manifest: Manifest, pieces: list[bytes], refs: list[PieceRef] | None = None) -> bytes:
    """The PNG file: signature, IHDR, the zlib header, one IDAT per piece (verbatim), the
    final block with the adler32 of everything, IEND. ``refs`` (from a stored manifest) give
    each piece's raw length and adler32; without them, ``manifest.pieces`` do."""
    meta = refs if refs is not None else list(manifest.pieces)
    if len(meta) != len(pieces):
        raise StripsError(f"the manifest lists {len(meta)} pieces, {len(pieces)} given")
    if sum(m.rows for m in meta) != manifest.height:
        raise StripsError("the manifest's pieces do not add up to the image's height")
    checksum = 1
    for ref in meta:
        checksum = adler32_combine(checksum, ref.adler32, ref.raw_length)
    ihdr = struct.pack(
        ">IIBBBBB",
        manifest.width,
        manifest.height,
        manifest.bit_depth,
        manifest.colour_type,
        0,
        0,
        0,
    )  # deflate, adaptive filtering, no interlace
    out = [_SIGNATURE, _chunk(b"IHDR", ihdr), _chunk(b"IDAT", _ZLIB_HEADER)]
    out += [_chunk(b"IDAT", data) for data in pieces]
    out.append(_chunk(b"IDAT", _FINAL_BLOCK + struct.pack(">I", checksum)))
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
