"""Keep freed tensor memory in the process, so that large images do not page-fault it back in.

With glibc's default settings, a block above its mmap threshold (dynamic, at most 32 MiB) is
mapped fresh for every tensor and unmapped when the tensor dies, and free memory above 2x the
threshold at the top of the heap is returned to the system. A network runs layer after layer
on tensors of the same few sizes (14.7 MiB per 64-channel map of a 320x180 LR image, 42 MiB
per tail sub-tile at x4), so each layer's output page-faults its memory in again: about 230,000
faults (0.43 s of CPU, 20 %) per 1280x720 output of ``edsr-s`` x4 on one core
(docs/performance.md, "Inference default path").

:func:`reuse_freed_memory` sets ``M_MMAP_THRESHOLD`` to ``MMAP_THRESHOLD`` (blocks up to it
come from the heap, and are reused there) and ``M_TRIM_THRESHOLD`` to twice that (the heap
keeps that much free memory instead of returning it). The process's peak memory grows a little
(429 vs 395 MiB in that run); the bits computed do not change. It is a process-wide setting, so
``facd upscale`` applies it to its own process, and the Python API leaves the allocator alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

#: Blocks up to this many bytes come from the heap (glibc ``M_MMAP_THRESHOLD``).
MMAP_THRESHOLD = 64 << 20
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def reuse_freed_memory(threshold: int = MMAP_THRESHOLD) -> bool:
    """Set glibc's mmap threshold to ``threshold`` bytes and its trim threshold to twice that;
    False (and nothing changed) where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(
        mallopt(_M_TRIM_THRESHOLD, 2 * threshold)
    )
