"""Work over the rows of a batch in chunks, side by side on a CPU's cores.

The renderers (sprites, ray-cast scenes) are many small element-wise operations. Split over
two cores inside each operation (PyTorch's intra-op threads), such an operation spends much of
its time handing work over; one core per operation and one chunk of the batch per core uses
them better. Each chunk's rows are computed exactly as they would be alone, so the results do
not depend on the chunking.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

T = TypeVar("T")


def side_by_side(work: Callable[[slice], T], count: int, max_rows: int, device: torch.device | str = "cpu") -> list[T]:
    """``work(rows)`` over consecutive slices of ``range(count)``, in order.

    The chunks in flight together hold at most ``max_rows`` rows (at least one per chunk),
    which bounds peak memory. On a CPU they are computed side by side, one per intra-op thread
    of the caller (:func:`torch.get_num_threads`), each on one thread; elsewhere (CUDA) in turn.
    """
    workers = torch.get_num_threads() if torch.device(device).type == "cpu" else 1
    chunk = max(1, min(max_rows // workers, math.ceil(count / workers)))
    chunks = [slice(start, min(start + chunk, count)) for start in range(0, count, chunk)]
    if workers == 1:
        return [work(rows) for rows in chunks]
    # Autograd's modes belong to a thread: the workers take the caller's.
    inference, grad = torch.is_inference_mode_enabled(), torch.is_grad_enabled()

    def in_callers_modes(rows: slice) -> T:
        with torch.inference_mode(inference), torch.set_grad_enabled(grad):
            return work(rows)

    try:
        with ThreadPoolExecutor(min(workers, len(chunks)), initializer=torch.set_num_threads, initargs=(1,)) as pool:
            return list(pool.map(in_callers_modes, chunks))
    finally:
        # Where a build keeps one thread count for the whole process, not one per thread, the
        # workers' setting would outlive them.
        torch.set_num_threads(workers)
