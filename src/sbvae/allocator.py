"""Keeping freed memory in the process, so that a training step does not fault its memory in anew.

PyTorch allocates a CPU tensor with the C library's ``malloc``. glibc serves a large block
(above a threshold that starts at 128 KB) with a fresh ``mmap`` and returns it to the kernel
when freed, and it hands the free top of its heap back too. A training step frees every
activation it made, so the next step touches fresh pages: thousands of page faults a step, each
a trip through the kernel (and, in a virtual machine whose host reclaims freed pages, through
the host). Raising both thresholds keeps those blocks in the heap for the next step to reuse.
The price is resident memory: the process keeps what it freed until it exits, and its peak can
rise a little, as blocks kept in the heap are not always the right size for the next request.

Applied when sbvae is imported, on glibc only (elsewhere nothing changes); the environment
variable ``SBVAE_KEEP_FREED_MEMORY=0`` leaves glibc's defaults. ``docs/performance.md`` has the
measurements.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 64 << 20
"""Blocks up to this size come from the heap (room for the activations of the paper's SBD
encoding a batch of 128 images of 64 px)."""
TRIM_THRESHOLD = 256 << 20
"""Free memory at the top of the heap kept before any is handed back to the kernel."""


def keep_freed_memory() -> bool:
    """Set glibc's ``malloc`` thresholds so freed blocks stay in the process (see the module's
    docstring). Returns whether they were set: False off glibc, or when
    ``SBVAE_KEEP_FREED_MEMORY=0``."""
    if os.environ.get("SBVAE_KEEP_FREED_MEMORY", "1") == "0":
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    # setting either one stops glibc from moving both thresholds itself
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
