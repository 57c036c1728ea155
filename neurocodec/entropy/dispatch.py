"""Where a stream is coded: the CPU coder (:mod:`neurocodec.entropy.rans`) or the bit-exact GPU
kernel (:mod:`neurocodec.kernels.rans_triton`). Codecs call this module; it imports both, and
neither of them imports it, so the CPU coder never depends on the kernels.

CUDA tensors (or ``device="cuda"``) take the kernel; ``NEUROCODEC_RANS_KERNEL=1`` forces the
kernel for any tensor (on the CPU under ``TRITON_INTERPRET=1``: how tests reach that path).
"""

from __future__ import annotations

import os

from neurocodec.entropy import rans
from neurocodec.entropy.tables import CdfTables

KERNEL_ENV = "NEUROCODEC_RANS_KERNEL"


def kernel_forced() -> bool:
    return os.environ.get(KERNEL_ENV) == "1"


def _gpu(x, device) -> bool:
    if kernel_forced() and hasattr(x, "device"):
        return True
    if device is not None:
        return str(device).startswith("cuda")
    return getattr(getattr(x, "device", None), "type", "cpu") == "cuda"


def encode(symbols, indexes, tables: CdfTables, lanes: int = 32, device=None) -> bytes:
    """:func:`neurocodec.entropy.rans.encode` on the CPU or in the kernel (same bytes)."""
    if _gpu(symbols, device):
        import torch

        from neurocodec.kernels import rans_triton

        return rans_triton.encode(torch.as_tensor(symbols, device=device),
                                  torch.as_tensor(indexes, device=device), tables, lanes)
    return rans.encode(symbols, indexes, tables, lanes)


def decode(data: bytes, indexes, tables: CdfTables, device=None):
    """:func:`neurocodec.entropy.rans.decode`; with CUDA ``indexes`` (or ``device="cuda"``)
    the kernel decodes and the int32 symbols stay on that device as a tensor."""
    if _gpu(indexes, device):
        import torch

        from neurocodec.kernels import rans_triton

        return rans_triton.decode(data, torch.as_tensor(indexes, device=device), tables)
    return rans.decode(data, indexes, tables)


def encode_batch(symbols_list, indexes_list, tables: CdfTables, lanes=32,
                 device=None) -> list[bytes]:
    """:func:`neurocodec.entropy.rans.encode_batch` (all CPU cores) or, for CUDA tensors /
    ``device="cuda"``, one launch of the batch kernel; the same bytes either way."""
    if symbols_list and _gpu(symbols_list[0], device):
        from neurocodec.kernels import rans_triton

        return rans_triton.encode_batch(symbols_list, indexes_list, tables, lanes, device=device)
    return rans.encode_batch(symbols_list, indexes_list, tables, lanes)


def decode_batch(streams, indexes_list, tables: CdfTables, device=None) -> list:
    """:func:`neurocodec.entropy.rans.decode_batch`, or with CUDA indexes (or
    ``device="cuda"``) one launch of the batch kernel, symbols staying on that device."""
    if indexes_list and _gpu(indexes_list[0], device):
        from neurocodec.kernels import rans_triton

        return rans_triton.decode_batch(streams, indexes_list, tables, device=device)
    return rans.decode_batch(streams, indexes_list, tables)
