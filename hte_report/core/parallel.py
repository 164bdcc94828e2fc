"""Independent pieces of work on the machine's cores, in threads.

numpy releases the GIL inside its array operations and BLAS products, so fits over large
arrays run in parallel in threads of one process: no copies of the design, no pickling. The
callers pin BLAS to one thread (``models.fast.one_blas_thread``), so k threads use k cores.
Results come back in the order of the items, and an exception is raised as a sequential loop
would raise it (the first item's first); the numbers do not depend on the number of threads.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from hte_report.core.memory import release_freed_memory


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask where the system has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def thread_map(fn: Callable, items: Sequence, parallel: bool = True) -> list:
    """``[fn(x) for x in items]``, in threads when ``parallel`` and there are cores to use."""
    workers = min(len(items), usable_cores()) if parallel else 1
    if workers <= 1:
        return [fn(x) for x in items]
    def run(x):
        try:
            return fn(x)
        finally:  # a thread's malloc arena keeps what it freed (up to tens of MiB) otherwise
            release_freed_memory()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, items))
