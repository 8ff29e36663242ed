"""Process-wide allocator settings for the long-running daemon (glibc only).

glibc serves a request above its mmap threshold (128 KiB at start) with a mapping of its
own, returned to the system when freed; but freeing such a chunk raises the threshold to
the chunk's size (up to 32 MiB). After the first full-page screenshot (megabytes) is freed,
every later screenshot, MHTML snapshot and photo batch comes from the heap instead, which
fragments: in a soak on painted pages the daemon's RSS crept up ~1.9 MiB per 100 captures
(0.6 with the threshold fixed; benchmarks/RESULTS.md). Fixing the threshold keeps big
buffers in mappings that go back to the system when freed.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3  # glibc's malloc.h; setting it also turns the dynamic raise off
MMAP_THRESHOLD = 1 << 20  # 1 MiB: pages and photos' buffers above it go straight to mmap


def keep_big_buffers_out_of_the_heap(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes; False where there is no glibc
    (musl, macOS), which changes nothing else."""
    try:
        # The process's own symbols: libc is already loaded, and find_library("c") would run
        # ldconfig in a subprocess at every start.
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = bool(mallopt(_M_MMAP_THRESHOLD, threshold))
    log.debug("mmap threshold fixed at %d bytes: %s", threshold, ok)
    return ok
