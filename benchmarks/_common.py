"""Shared helpers of the benchmarks: the fixture pages, a watchlist, memory and CPU probes.

Not a benchmark itself (``run_all.py`` only runs ``bench_*.py``).
"""

from __future__ import annotations

import atexit
import io
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np
from PIL import Image

from watcher.demo.site import DemoSite

REPO_ROOT = Path(__file__).resolve().parent.parent
_PAGE = os.sysconf("SC_PAGE_SIZE")

FILLER = str.split(
    "new stock today price inbox shipping fast good quality call me now sale discount "
    "bracelet beads carving antique old collection 100g 5kg 18k cheap original real "
    "dress shoes phone case coffee wine tea bag chair table ring necklace"
)


# -- fixture pages ---------------------------------------------------------------------------
def photo_bytes(seed: int, size: tuple[int, int] = (480, 360)) -> bytes:
    """A distinct JPEG photo for ``seed`` (random low-frequency blobs: pHashes far apart).

    Much faster than :func:`watcher.demo.images.variant`, so thousands can be made for the
    fixture site; different seeds are different pictures to a perceptual hash.
    """
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    img = Image.fromarray(small, "RGB").resize(size, Image.Resampling.BICUBIC)
    noise = rng.integers(0, 24, size=(size[1], size[0], 3), dtype=np.uint8)
    img = Image.fromarray(np.asarray(img, dtype=np.uint8) // 2 + noise * 4 // 3, "RGB")
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=82)
    return buffer.getvalue()


def post_text(rng: random.Random) -> str:
    """A post of 12-40 filler words."""
    return " ".join(rng.choices(FILLER, k=rng.randint(12, 40)))


def fill_channel(
    site: DemoSite, name: str, posts: int = 20, images: int = 10, seed_base: int = 0
) -> None:
    """A channel ``name`` with ``posts`` posts of ``images`` distinct photos each."""
    rng = random.Random(seed_base)
    site.channel(name)
    for n in range(posts):
        keys = [
            site.put_image(f"{name}-{n}-{i}", photo_bytes(seed_base * 1000 + n * images + i))
            for i in range(images)
        ]
        site.add_post(name, post_text(rng), images=keys)


def add_fresh_post(site: DemoSite, name: str, text: str, images: int, seed: int) -> int:
    """One more post on ``name`` with ``images`` new photos; returns its id."""
    keys = [
        site.put_image(f"{name}-x{seed}-{i}", photo_bytes(seed * 7919 + i)) for i in range(images)
    ]
    return site.add_post(name, text, images=keys)


@dataclass(frozen=True, slots=True)
class RemoteSite:
    """A fixture site served by another process: its address, and its pid for its CPU."""

    base_url: str
    pid: int = 0

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) the site's process has used so far; 0 if unknown.

        Reported beside, never within, the watcher's figures: a real site's cost is its
        host's, not ours."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return 0.0
        # utime and stime are the 14th and 15th fields; after "pid (comm)" they are 12th, 13th.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def site_in_own_process(argv: list[str]) -> Iterator[RemoteSite]:
    """Run ``python <argv>`` (a script that calls :func:`serve_site_forever`) and yield the
    site's address; stop it afterwards.

    A watched site is remote: serving hundreds of photos must neither compete with watcher
    for this interpreter's GIL nor count as watcher's CPU or memory. The server detaches
    (forks and lets its parent exit), so it is not in this process's tree either.
    """
    starter = subprocess.Popen(
        [sys.executable, *argv], stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT
    )
    assert starter.stdout is not None
    line = starter.stdout.readline().split()
    starter.wait()
    if len(line) != 2:
        raise RuntimeError(f"the fixture site did not start ({argv})")
    pid, url = int(line[0]), line[1]
    try:
        yield RemoteSite(url, pid)
    finally:
        os.kill(pid, signal.SIGTERM)


def serve_site_forever(build: Callable[[DemoSite], None]) -> None:
    """The other side of :func:`site_in_own_process`: detach, build, print "pid url", serve
    until SIGTERM, or until the benchmark that started it is gone (killed, say, while a
    1,000-target site was still being built)."""
    benchmark = os.getppid()
    if os.fork():
        os._exit(0)
    os.setsid()
    threading.Thread(target=_exit_without, args=(benchmark,), daemon=True).start()
    site = DemoSite().start()
    build(site)
    print(os.getpid(), site.base_url, flush=True)
    while True:  # until SIGTERM, whose default action ends the process
        signal.pause()


def _exit_without(pid: int) -> None:
    """End this process once ``pid`` no longer exists."""
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(0)
        time.sleep(1)


def write_watchlist(
    path: Path, site: DemoSite | RemoteSite, names: list[str], extra: str = ""
) -> Path:
    """A watchlist of telegram targets ``names`` on ``site`` (``extra``: YAML per target)."""
    lines = ["targets:"]
    for name in names:
        # The fixture site is on loopback, which captures refuse unless a target allows it.
        lines.append(
            f"  - {{name: {name}, platform: telegram, url: '{site.base_url}/s/{name}',"
            " allow_private_network: true}"
        )
    if extra:
        lines = [extra.rstrip("\n"), *lines]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- memory -----------------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc/<pid>/task/*/children)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:  # the process ended while we looked
        return found
    for task in tasks:
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``."""
    out, todo = [], _children(pid)
    while todo:
        child = todo.pop()
        out.append(child)
        todo += _children(child)
    return out


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` (0 when it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def pss_bytes(pid: int) -> int:
    """Proportional set size (shared pages divided among sharers); RSS when unavailable."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss_bytes(pid)


@dataclass(frozen=True, slots=True)
class MemorySample:
    """Memory of this process and of its child tree (Playwright driver + Chromium)."""

    self_rss: int
    browser_pss: int
    browser_procs: int


def sample_memory() -> MemorySample:
    """RSS of this process; summed PSS of every descendant (the browser tree)."""
    kids = descendants(os.getpid())
    return MemorySample(rss_bytes(os.getpid()), sum(pss_bytes(p) for p in kids), len(kids))


class _Sampler:
    """Calls ``_sample`` every ``every`` seconds in a thread while the block runs, and once
    more at its end."""

    def __init__(self, every: float) -> None:
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while True:
            self._sample()
            if self._stop.wait(self.every):
                return

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


class PeakMemory(_Sampler):
    """Samples :func:`sample_memory` every ``every`` seconds in a thread; keeps the peaks."""

    def __init__(self, every: float = 0.5) -> None:
        super().__init__(every)
        self.peak_self = 0
        self.peak_browser = 0
        self.peak_total = 0

    def _sample(self) -> None:
        sample = sample_memory()
        self.peak_self = max(self.peak_self, sample.self_rss)
        self.peak_browser = max(self.peak_browser, sample.browser_pss)
        self.peak_total = max(self.peak_total, sample.self_rss + sample.browser_pss)


# -- CPU --------------------------------------------------------------------------------------
@dataclass
class CpuUse:
    """CPU seconds spent (this process; its descendants: the browser tree) over a wall span."""

    wall_s: float = 0.0
    self_s: float = 0.0
    children_s: float = 0.0

    @property
    def cores(self) -> float:
        """Average number of cores kept busy."""
        return (self.self_s + self.children_s) / self.wall_s if self.wall_s else 0.0


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


class _TreeCpu(_Sampler):
    """CPU seconds (utime + stime) of every descendant process, sampled in a thread.

    Each process counts up to its last sample, even after it exits: Chromium's renderers are
    children of its zygote, and when a browser is relaunched (every 200 contexts) their CPU
    reached no ancestor's cutime, so reading the tree at the start and end lost it (a round of
    100 full captures came out at 0.9 CPU-s a capture). A process's last ``every`` seconds
    before it exits are missed; processes are keyed by (pid, start time), so reused pids are
    told apart.
    """

    def __init__(self, every: float = 0.25) -> None:
        super().__init__(every)
        self._first: dict[tuple[int, int], int] = {}
        self._last: dict[tuple[int, int], int] = {}
        self._baseline = True
        self._sample()
        self._baseline = False

    def _sample(self) -> None:
        for pid in descendants(os.getpid()):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                key, ticks = (pid, int(fields[19])), int(fields[11]) + int(fields[12])
            except (OSError, IndexError, ValueError):
                continue
            self._first.setdefault(key, ticks if self._baseline else 0)
            self._last[key] = ticks

    @property
    def seconds(self) -> float:
        """CPU seconds the tree spent since the block began."""
        ticks = sum(last - self._first[key] for key, last in self._last.items())
        return ticks / os.sysconf("SC_CLK_TCK")


@contextmanager
def measure_cpu() -> Iterator[CpuUse]:
    """CPU of this process and of its descendants (sampled, see :class:`_TreeCpu`) during the
    block."""
    use = CpuUse()
    t0, s0 = time.perf_counter(), _cpu(0)
    with _TreeCpu() as tree:
        yield use
    use.wall_s = time.perf_counter() - t0
    use.self_s = _cpu(0) - s0
    use.children_s = tree.seconds


# -- figures ------------------------------------------------------------------------------------
def percentile(values: list[float], pct: float) -> float:
    """The ``pct`` percentile (linear interpolation); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * pct / 100
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs (0 with fewer than two points)."""
    if len(xs) < 2:
        return 0.0
    return statistics.linear_regression(xs, ys).slope


def mib(n: float) -> str:
    """Bytes as MiB text."""
    return f"{n / 2**20:.0f} MiB"


def scratch_dir(prefix: str) -> Path:
    """A fresh folder for one run's archive, removed when the script ends (a soak leaves
    3.5 GB of blobs); set WATCHER_BENCH_KEEP=1 to keep it for a look."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    if not os.environ.get("WATCHER_BENCH_KEEP"):
        atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


def add_repo_root() -> None:
    """Make ``tests.fakes`` importable."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
