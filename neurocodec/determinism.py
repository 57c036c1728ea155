"""Helpers that make float results independent of the thread count, and seeds reproducible."""

from __future__ import annotations

import numpy as np
import torch


class single_thread:
    """Run a block with one torch thread, so float results do not depend on the thread count."""

    def __enter__(self):
        self.n = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.n)


def mixed_seed(*keys: int) -> int:
    """A 63-bit seed from integer keys (e.g. seed, rank, step) through numpy's SeedSequence,
    so nearby keys give unrelated random streams."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1, np.uint64)[0]) >> 1
