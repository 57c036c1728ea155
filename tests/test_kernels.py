"""The Triton kernels against the CPU coder, byte for byte and symbol for symbol.

Under TRITON_INTERPRET=1 (set in conftest) they run on the CPU at ~20k symbols/s, so the
sizes stay small; the GPU benchmark covers 16M symbols on a real card."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings

from neurocodec.entropy import dispatch, rans
from neurocodec.entropy.tables import default_scale_table, gaussian_tables, scale_indexes
from neurocodec.errors import BitstreamError
from neurocodec.kernels import rans_triton
from tests.test_rans import coding_case


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(coding_case())
def test_kernel_matches_cpu_coder(case):
    tables, sym, idx, lanes = case
    lanes = max(lanes, 16)  # interpreter cost grows with steps per lane, not with lanes
    ref = rans.encode(sym, idx, tables, lanes=lanes)
    got = rans_triton.encode(torch.from_numpy(sym), torch.from_numpy(idx), tables, lanes=lanes)
    assert got == ref
    dec = rans_triton.decode(ref, torch.from_numpy(idx), tables)
    np.testing.assert_array_equal(dec.numpy(), sym)


@pytest.mark.parametrize("precision", [12, 14, 16])
def test_kernel_gaussian_tables_with_escapes(precision):
    t = gaussian_tables(precision=precision)
    rng = np.random.default_rng(precision)
    n = 1500
    sc = np.exp(rng.uniform(np.log(0.11), np.log(60), n))
    sym = np.rint(rng.normal(0, sc)).astype(np.int32)
    sym[[5, 77, 900]] = [np.iinfo(np.int32).max, np.iinfo(np.int32).min, 123456]
    idx = scale_indexes(sc, default_scale_table())
    ref = rans.encode(sym, idx, t, lanes=64)
    assert rans_triton.encode(torch.from_numpy(sym), torch.from_numpy(idx), t, lanes=64) == ref
    np.testing.assert_array_equal(rans_triton.decode(ref, torch.from_numpy(idx), t).numpy(), sym)


def test_kernel_rejects_truncated_and_corrupted():
    t = gaussian_tables()
    rng = np.random.default_rng(1)
    sc = np.exp(rng.uniform(np.log(0.2), np.log(20), 640))
    sym = np.rint(rng.normal(0, sc)).astype(np.int32)
    idx = torch.from_numpy(scale_indexes(sc, default_scale_table()))
    data = rans.encode(sym, idx.numpy(), t, lanes=64)
    with pytest.raises(BitstreamError):
        rans_triton.decode(data[:-2], idx, t)
    bad = bytearray(data)
    bad[len(bad) // 2] ^= 0x10
    with pytest.raises(BitstreamError):
        rans_triton.decode(bytes(bad), idx, t)


def test_image_decode_through_kernel_path(monkeypatch):
    """The codec's device path (indexes as tensors, kernel decode) gives the CPU result."""
    from tests.test_image_codec import tiny_model

    m = tiny_model(transform="dct")
    x = torch.rand(1, 3, 32, 64)
    streams, zs = m.compress(x, 1)
    ref = m.decompress(streams, zs, 1, (32, 64))
    monkeypatch.setenv(dispatch.KERNEL_ENV, "1")
    assert dispatch.kernel_forced()
    assert torch.equal(m.decompress(streams, zs, 1, (32, 64)), ref)
