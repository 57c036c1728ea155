"""Dynamic scheduling for numba ``prange`` loops: workers share an atomic counter.

numba's ``prange`` splits its range into equal contiguous parts up front (the OpenMP and
workqueue threading layers). A batch of streams of unequal sizes, or cores that a shared host
slows unevenly, then leaves one thread idle while the other finishes its part: measured on a
2-core VM, the slower thread of a static split took a median 5% (up to 15%) longer than the
mean. Instead, each of :func:`workers` loop bodies takes the next item from :func:`take` until
none is left, so a thread that falls behind simply takes fewer items.

    counter = np.zeros(1, np.int64)
    for _ in nb.prange(n_workers):  # n_workers = workers(n), passed in from Python
        while True:
            i = take(counter, n)
            if i < 0:
                break
            ...  # item i
"""

from __future__ import annotations

import numba as nb
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def _fetch_add(typingctx, counter):
    """Atomically ``counter[0] += 1``; returns the value before. ``counter``: int64 ``[1+]``."""
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64):
        return None

    def codegen(context, builder, sig, args):
        aryty = sig.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary,
                                       [context.get_constant(types.intp, 0)])
        one = context.get_constant(types.int64, 1)
        return builder.atomic_rmw("add", ptr, one, "monotonic")

    return types.int64(counter), codegen


@nb.njit(cache=True, nogil=True)
def take(counter, n):
    """The next unclaimed item of ``0..n-1``, or -1 when all are claimed."""
    i = _fetch_add(counter)
    return i if i < n else -1


def workers(n: int) -> int:
    """How many loop bodies to start for ``n`` items: one per numba thread, at most ``n``.
    Called from Python: ``get_num_threads`` inside a kernel would keep numba from caching it."""
    return max(1, min(nb.get_num_threads(), int(n)))
