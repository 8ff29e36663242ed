"""The daemon's allocator setting: big buffers stay in mappings that go back to the system."""

from __future__ import annotations

import ctypes
import platform
import subprocess
import sys

import pytest

from watcher.malloc import MMAP_THRESHOLD

# Frees an 8 MiB buffer (which raises glibc's dynamic mmap threshold to 8 MiB unless it was
# fixed), then asks whether a new 4 MiB buffer got a mapping of its own (mallinfo2's hblkhd).
PROBE = """
import ctypes, sys
from watcher.malloc import keep_big_buffers_out_of_the_heap

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "fixed":
    assert keep_big_buffers_out_of_the_heap()
big = bytearray(8 << 20)
del big
before = libc.mallinfo2().hblkhd
buffer = bytearray(4 << 20)
print("mapped" if libc.mallinfo2().hblkhd - before >= 4 << 20 else "heap")
"""


def _has_mallinfo2() -> bool:
    try:
        return hasattr(ctypes.CDLL(None), "mallinfo2")
    except OSError:
        return False


needs_glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or not _has_mallinfo2(),
    reason="glibc >= 2.33 only",
)


def _probe(mode: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@needs_glibc
def test_a_freed_big_buffer_moves_later_ones_into_the_heap_by_default() -> None:
    # The behaviour the setting exists for: without it, glibc serves the next screenshot-sized
    # buffer from the heap, which fragments over thousands of captures.
    assert _probe("default") == "heap"


@needs_glibc
def test_with_the_threshold_fixed_big_buffers_keep_their_own_mappings() -> None:
    assert _probe("fixed") == "mapped"


def test_the_threshold_is_below_a_screenshot() -> None:
    # A full-page PNG of a 20-post channel is megabytes; a post's text is not.
    assert 128 * 1024 <= MMAP_THRESHOLD <= 2 * 1024 * 1024
