"""Text in photos: an OCR engine bounded in pixels, time and memory per photo.

Dealers write the phone number, the WeChat or Zalo ID and the price on the product photo
rather than in the post. The engine is RapidOCR (PP-OCR detection, direction and
recognition models, ONNX on the CPU) whose models ship inside the ``rapidocr`` wheel: the
paths are given explicitly, so nothing is ever downloaded at run time.

Photos come from the sites we watch, so they are hostile input: a 400-megapixel
"decompression bomb", a truncated JPEG, a file that is not an image. Each photo is read in a
child process of its own (spawned, not forked: the parent has an event loop and threads):

- its size is read from the header and refused above ``max_pixels`` *before* decoding;
  JPEGs are decoded straight at a reduced scale, and every photo is shrunk to ``max_side``;
- the child has an address-space limit (``max_memory``), a low CPU priority and one ONNX
  thread, so it never takes a core from a capture;
- the parent waits at most ``timeout`` seconds, then kills the child (and starts a fresh one
  for the next photo).

A photo that cannot be read gives a :class:`PhotoText` whose ``status`` says why, never an
exception: one bad photo must not stop the reading of the others.
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from enum import StrEnum
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from watcher.errors import WatcherError

log = logging.getLogger(__name__)

# Stored with each reading: which engine and models said so.
MODELS = "PP-OCRv6_det_small+PP-OCRv6_rec_small+ch_ppocr_mobile_v2.0_cls"


def engine_name() -> str:
    """The engine and model names stored with each reading, e.g. ``rapidocr-3.10.0/...``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"rapidocr-{version('rapidocr')}/{MODELS}"
    except PackageNotFoundError:
        return f"rapidocr/{MODELS}"


class OcrStatus(StrEnum):
    """What became of one photo."""

    OK = "ok"  # read (maybe no text in it)
    REFUSED = "refused"  # too many pixels, or too many bytes: not decoded
    UNREADABLE = "unreadable"  # not an image, or truncated
    TIMEOUT = "timeout"  # the engine took longer than the limit: killed
    FAILED = "failed"  # the engine crashed (out of memory...)


@dataclass(frozen=True, slots=True)
class OcrLimits:
    """The bounds of one photo's reading."""

    max_pixels: int = 50_000_000  # a 12-MP phone photo is 12,000,000; a 400-MP bomb is refused
    max_bytes: int = 25 * 1024 * 1024
    max_side: int = 1600  # shrunk to this before detection (the detector works at 736)
    timeout: float = 60.0  # seconds per photo, model loading excluded
    max_memory: int = 3 * 1024**3  # the child's address space
    min_confidence: float = 0.5  # recognised lines below this are dropped


@dataclass(frozen=True, slots=True)
class TextBox:
    """One line of text found in a photo: its corners (x, y in the original photo's
    pixels, clockwise from top left) and the recogniser's confidence (0-1)."""

    text: str
    confidence: float
    box: tuple[tuple[int, int], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "confidence": self.confidence,
            "box": [list(p) for p in self.box],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TextBox:
        return cls(
            str(data.get("text", "")),
            float(data.get("confidence", 0.0)),
            tuple((int(x), int(y)) for x, y in data.get("box", ())),
        )


@dataclass(frozen=True, slots=True)
class PhotoText:
    """What the engine read in one photo."""

    status: OcrStatus
    boxes: tuple[TextBox, ...] = ()
    reason: str = ""  # why a photo was not read, in words
    width: int = 0  # the original photo's size
    height: int = 0
    seconds: float = 0.0  # time spent reading (decode + OCR)
    cpu_seconds: float = 0.0  # CPU time the child spent on it (all its threads)
    engine: str = ""

    @property
    def text(self) -> str:
        """The lines read, top to bottom, one per line."""
        return "\n".join(box.text for box in self.boxes)


@dataclass
class _Child:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    started: float = field(default_factory=time.monotonic)


class OcrEngine:
    """Reads photos one at a time in a child process; blocking: call it from a worker thread.

    The child loads the models once (a second or two) and is reused until a photo kills it
    or times out. ``close`` ends it.
    """

    def __init__(self, limits: OcrLimits | None = None) -> None:
        self.limits = limits or OcrLimits()
        self._child: _Child | None = None

    def read(self, data: bytes) -> PhotoText:
        """The text in the photo ``data`` (any format Pillow reads), bounded by the limits."""
        if len(data) > self.limits.max_bytes:
            return PhotoText(
                OcrStatus.REFUSED,
                reason=f"the file has {len(data):,} bytes, over the limit of "
                f"{self.limits.max_bytes:,}: not read",
            )
        child = self._ensure_child()
        started = time.monotonic()
        try:
            child.conn.send_bytes(data)
            if not child.conn.poll(self.limits.timeout):
                self._kill()
                return PhotoText(
                    OcrStatus.TIMEOUT,
                    reason=f"reading took longer than {self.limits.timeout:g} s: stopped",
                    seconds=time.monotonic() - started,
                )
            result = child.conn.recv()
        except (EOFError, OSError, BrokenPipeError) as exc:
            # The child died (out of its memory limit, killed): a fresh one reads the next.
            code = child.process.exitcode
            self._kill()
            return PhotoText(
                OcrStatus.FAILED,
                reason=f"the OCR process ended while reading (exit code {code}; {exc or 'EOF'})",
                seconds=time.monotonic() - started,
            )
        return result

    def stop(self) -> None:
        """Kill the child now, from any thread: a read in progress returns FAILED."""
        child = self._child
        if child is not None and child.process.is_alive():
            child.process.kill()

    def close(self) -> None:
        """End the child process, if any."""
        child, self._child = self._child, None
        if child is None:
            return
        try:
            child.conn.send_bytes(b"")  # asks it to leave
            child.process.join(5)
        except OSError:
            pass  # already gone
        if child.process.is_alive():
            child.process.kill()
            child.process.join(5)
        child.conn.close()

    def __enter__(self) -> OcrEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure_child(self) -> _Child:
        if self._child is not None and self._child.process.is_alive():
            return self._child
        self._kill()
        context = multiprocessing.get_context("spawn")
        parent, child_conn = context.Pipe()
        process = context.Process(
            target=_serve, args=(child_conn, self.limits), name="watcher-ocr", daemon=True
        )
        process.start()
        child_conn.close()
        # Model loading is not counted in a photo's timeout: wait for the child to say ready.
        try:
            ready = parent.poll(120) and parent.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            process.kill()
            process.join(5)
            parent.close()
            raise WatcherError(
                "the OCR engine could not start (its error is in the log above); photos are "
                "not read until it does. Reinstall watcher's dependencies with 'make setup'"
            )
        self._child = _Child(process, parent)
        return self._child

    def _kill(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        if child.process.is_alive():
            child.process.kill()
        child.process.join(5)
        child.conn.close()


# -- the child process ------------------------------------------------------------------------


def _serve(conn: Connection, limits: OcrLimits) -> None:
    """The child: limit itself, load the models, then read photos until told to stop."""
    _limit_self(limits)
    engine = _load_engine()
    conn.send("ready")
    while True:
        try:
            data = conn.recv_bytes()
        except EOFError:
            return
        if not data:
            return
        conn.send(read_photo(engine, data, limits))


def _limit_self(limits: OcrLimits) -> None:
    import resource

    # Below captures and alerts in the CPU queue; bounded in memory: a photo that would need
    # more kills this process only (the parent sees FAILED and starts another).
    os.nice(10)
    resource.setrlimit(resource.RLIMIT_AS, (limits.max_memory, limits.max_memory))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"


def model_paths() -> dict[str, Path]:
    """The models shipped in the rapidocr wheel (nothing is downloaded)."""
    import rapidocr

    models = Path(rapidocr.__file__).parent / "models"
    paths = {
        "Det.model_path": models / "PP-OCRv6_det_small.onnx",
        "Rec.model_path": models / "PP-OCRv6_rec_small.onnx",
        "Cls.model_path": models / "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
    }
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"the OCR models are missing from the rapidocr package ({', '.join(missing)}); "
            "reinstall watcher's dependencies: make setup"
        )
    return paths


def _load_engine() -> Any:
    import logging as std_logging

    from rapidocr import RapidOCR

    params: dict[str, Any] = {str(k): str(v) for k, v in model_paths().items()}
    params.update(
        {
            "Global.log_level": "error",
            "Global.max_side_len": 2000,
            "EngineConfig.onnxruntime.intra_op_num_threads": 1,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
    )
    engine = RapidOCR(params=params)
    std_logging.getLogger("RapidOCR").setLevel(std_logging.ERROR)
    return engine


def read_photo(engine: Any, data: bytes, limits: OcrLimits) -> PhotoText:
    """Decode ``data`` within the limits and read it with ``engine`` (in the child)."""
    started, cpu = time.monotonic(), time.process_time()
    image = decode_bounded(data, limits)
    if isinstance(image, PhotoText):
        return image
    pixels, (width, height), scale = image
    try:
        output = engine(pixels, text_score=limits.min_confidence)
    except Exception as exc:  # the engine's own errors, of any type: one photo's failure
        return PhotoText(
            OcrStatus.FAILED,
            reason=f"the OCR engine failed on this photo: {type(exc).__name__}: {exc}",
            width=width,
            height=height,
            seconds=time.monotonic() - started,
        )
    boxes = []
    for box, text, score in zip(
        output.boxes if output.boxes is not None else (),
        output.txts or (),
        output.scores or (),
        strict=False,
    ):
        if not text.strip() or score < limits.min_confidence:
            continue
        corners = tuple((round(float(x) / scale), round(float(y) / scale)) for x, y in box)
        boxes.append(TextBox(text.strip(), round(float(score), 4), corners))
    boxes.sort(key=lambda b: (min(y for _, y in b.box), min(x for x, _ in b.box)))
    return PhotoText(
        OcrStatus.OK,
        tuple(boxes),
        width=width,
        height=height,
        seconds=time.monotonic() - started,
        cpu_seconds=time.process_time() - cpu,
    )


def decode_bounded(
    data: bytes, limits: OcrLimits
) -> tuple[Any, tuple[int, int], float] | PhotoText:
    """The photo as a BGR array no larger than ``max_side``, its original size and the
    scale applied; or a :class:`PhotoText` saying why it was not decoded."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))  # reads the header only
        width, height = image.size
        if width * height > limits.max_pixels:
            return PhotoText(
                OcrStatus.REFUSED,
                reason=f"the photo claims {width}x{height} pixels ({width * height / 1e6:.0f} MP),"
                f" over the limit of {limits.max_pixels / 1e6:.0f} MP: not decoded "
                "(a decompression bomb, or a huge scan)",
                width=width,
                height=height,
            )
        if image.format == "JPEG":
            image.draft("RGB", (limits.max_side, limits.max_side))  # decode at 1/2, 1/4, 1/8
        image.load()
        image = image.convert("RGB")
        image.thumbnail((limits.max_side, limits.max_side))
    except Image.DecompressionBombError as exc:
        # Pillow's own guard at open (over twice its limit): refused as ours would be.
        return PhotoText(
            OcrStatus.REFUSED,
            reason=f"the photo is too large to decode safely ({exc}): not decoded "
            "(a decompression bomb, or a huge scan)",
        )
    except UnidentifiedImageError:
        return PhotoText(OcrStatus.UNREADABLE, reason="not an image file that can be decoded")
    except (OSError, ValueError, SyntaxError) as exc:
        # Pillow raises these for a truncated file or a broken header.
        return PhotoText(OcrStatus.UNREADABLE, reason=f"the photo could not be decoded: {exc}")
    scale = image.width / width if width else 1.0
    pixels = np.asarray(image)[:, :, ::-1].copy()  # RGB → BGR, as OpenCV expects
    return pixels, (width, height), scale
