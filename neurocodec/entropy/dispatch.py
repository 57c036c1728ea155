"""Where a stream is coded: the CPU coder (:mod:`neurocodec.entropy.rans`) or the bit-exact GPU
kernel (:mod:`neurocodec.kernels.rans_triton`). Codecs call this module; it imports both, and
neither of them imports it, so the CPU coder never depends on the kernels.

CUDA tensors (or ``device="cuda"``) take the kernel; ``NEUROCODEC_RANS_KERNEL=1`` forces the
kernel for any tensor (on the CPU under ``TRITON_INTERPRET=1``: how tests reach that path).
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

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


# A latent decoder as a generator: it yields ``(stream, indexes, tables)`` for each stream it
# needs, in order, is sent back that stream's decoded symbols, and returns its result.
StreamRequest = tuple[bytes, Any, CdfTables]
StreamDecoder = Generator[StreamRequest, Any, Any]


def decode_lockstep(decoders: list[StreamDecoder]) -> list:
    """Run several independent decoders (an image's entropy tiles, say) side by side: each
    round collects the stream every unfinished decoder asks for and decodes them all in one
    :func:`decode_batch` call (per table set), so the cores — or a GPU, when the indexes are
    on one — get many streams at once. Each decoder sees exactly the symbols it would get alone. Returns their results in
    order; on an error every decoder is closed first."""
    results: list = [None] * len(decoders)
    pending: dict[int, StreamRequest] = {}
    try:
        for i in range(len(decoders)):
            _advance(decoders, i, None, pending, results)
        while pending:
            keys = list(pending)
            groups: dict[int, list[int]] = {}
            for i in keys:
                groups.setdefault(id(pending[i][2]), []).append(i)
            decoded: dict[int, Any] = {}
            for members in groups.values():
                tables = pending[members[0]][2]
                syms = decode_batch([pending[i][0] for i in members],
                                    [pending[i][1] for i in members], tables)
                decoded.update(zip(members, syms))
            for i in keys:
                del pending[i]
                _advance(decoders, i, decoded[i], pending, results)
    finally:
        for d in decoders:
            d.close()
    return results


def _advance(decoders: list[StreamDecoder], i: int, value, pending: dict, results: list
             ) -> None:
    try:
        pending[i] = decoders[i].send(value)
    except StopIteration as e:
        results[i] = e.value
