"""Returning freed memory to the operating system.

A large design is assembled from many column arrays of a few megabytes each. glibc's
allocator keeps such freed blocks inside the process heap (below its trimming threshold, or
in the middle of the heap), so the resident size would stay at the sum of the columns and the
assembled design even though the columns are gone. ``malloc_trim(0)`` hands the free pages
back. Elsewhere (macOS, musl, Windows) there is no such call and nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache


@cache
def _malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_freed_memory() -> None:
    """Give the heap's free pages back to the operating system (glibc only; else a no-op)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
