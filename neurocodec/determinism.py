"""Helpers that make float results independent of the caller's torch thread count."""

from __future__ import annotations

import torch


class single_thread:
    """Run a block with one torch thread, so float results do not depend on the thread count."""

    def __enter__(self):
        self.n = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.n)
