"""glibc malloc thresholds for worker processes that handle large payloads.

glibc returns freed memory at the top of its heap to the kernel once more than
``M_TRIM_THRESHOLD`` is free there (twice the largest buffer freed so far, under its adaptive
rule). A request that frees three 900 KB buffers (an upload, its decoded image, the pickle of
it) trips that rule every time, and the next request faults the same pages back in, zeroed:
about 800 page faults and 1-3 ms of CPU per request in an API worker. Worker processes
therefore start where that rule would stop growing (``M_MMAP_THRESHOLD`` 32 MiB, glibc's own
ceiling for it) and keep up to 64 MiB of free heap.

Any ``MALLOC_*_`` tuning variable in the environment means the user chose their own, and
nothing is changed; so does a C library other than glibc.
"""
from __future__ import annotations

import ctypes
import os

__all__ = ["tune_allocator"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 << 20
TRIM_THRESHOLD_BYTES = 64 << 20
_USER_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_",
                  "MALLOC_MMAP_MAX_")


def _is_glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") is not None
    except (ValueError, OSError, AttributeError):  # not a GNU system
        return False


def tune_allocator() -> bool:
    """Set this process's malloc thresholds (see the module docstring); True when set."""
    if any(name in os.environ for name in _USER_SETTINGS):
        return False
    if "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    if not _is_glibc():
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
                and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
