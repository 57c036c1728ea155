"""The one timing helper the benchmark scripts share (imported as a sibling module)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable


def best_time(fn: Callable, repeat: int, sync: Callable[[], None] | None = None):
    """Best wall time of ``repeat`` calls of ``fn`` (after ``sync()`` if given, e.g. a CUDA
    synchronise), and the last call's result."""
    best, out = math.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        if sync:
            sync()
        best = min(best, time.perf_counter() - t)
    return best, out
