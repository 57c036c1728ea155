"""The batch API: many streams in one call, each equal to the single-stream coder's."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurocodec.entropy import rans
from neurocodec.entropy.tables import (
    default_scale_table,
    gaussian_tables,
    pmf_tables,
    scale_indexes,
)
from neurocodec.errors import BitstreamError

I32 = np.iinfo(np.int32)


@st.composite
def batch_case(draw):
    precision = draw(st.integers(12, 16))
    k = draw(st.integers(1, 4))
    pmfs, offsets = [], []
    for _ in range(k):
        m = draw(st.integers(1, 30))
        w = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=m, max_size=m)))
        pmfs.append(w / w.sum() * 0.999 if w.sum() > 0 else np.full(m, 0.999 / m))
        offsets.append(draw(st.integers(-50, 50)))
    tables = pmf_tables(pmfs, precision, np.array(offsets))
    count = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    syms, idxs = [], []
    for _ in range(count):
        n = draw(st.sampled_from([0, 1, 2, 33, 257, 600]))
        idx = rng.integers(0, k, n).astype(np.int32)
        sym = np.array(offsets, np.int64)[idx] + rng.integers(-3, 35, n)
        if n:
            where = rng.random(n) < 0.05
            sym[where] = rng.choice([I32.max, I32.min, 0, 1 << 20], where.sum())
        syms.append(sym.astype(np.int32))
        idxs.append(idx)
    lanes = draw(st.one_of(st.sampled_from([1, 3, 32]),
                           st.lists(st.sampled_from([1, 2, 7, 32, 64]), min_size=count,
                                    max_size=count)))
    return tables, syms, idxs, lanes


@settings(max_examples=60, deadline=None)
@given(batch_case())
def test_batch_equals_single_stream_coder(case):
    tables, syms, idxs, lanes = case
    per = lanes if isinstance(lanes, list) else [lanes] * len(syms)
    got = rans.encode_batch(syms, idxs, tables, lanes=lanes)
    assert got == [rans.encode(s, i, tables, lanes=v) for s, i, v in zip(syms, idxs, per)]
    dec = rans.decode_batch(got, idxs, tables)
    for d, s, data, i in zip(dec, syms, got, idxs):
        np.testing.assert_array_equal(d, s)
        np.testing.assert_array_equal(d, rans.decode(data, i, tables))


def _gaussian_batch(count=8, n=3000, seed=0):
    rng = np.random.default_rng(seed)
    syms, idxs = [], []
    for _ in range(count):
        sc = np.exp(rng.uniform(np.log(0.11), np.log(20), n))
        syms.append(np.rint(rng.normal(0, sc)).astype(np.int32))
        idxs.append(scale_indexes(sc, default_scale_table()))
    return syms, idxs


def test_batch_errors_name_the_stream():
    t = gaussian_tables()
    syms, idxs = _gaussian_batch()
    data = rans.encode_batch(syms, idxs, t)
    for cut in [0, 5, 40, len(data[3]) // 2, len(data[3]) - 1]:
        bad = list(data)
        bad[3] = data[3][:cut]
        with pytest.raises(BitstreamError, match="stream 3"):
            rans.decode_batch(bad, idxs, t)
    bad = list(data)
    bad[5] = data[5] + b"\0\0"
    with pytest.raises(BitstreamError, match="stream 5"):
        rans.decode_batch(bad, idxs, t)
    wrong = list(idxs)
    wrong[2] = idxs[2][:-1]
    with pytest.raises(BitstreamError, match="stream 2"):
        rans.decode_batch(data, wrong, t)
    rng = np.random.default_rng(5)
    caught = 0
    for _ in range(30):
        bad = list(data)
        b = bytearray(bad[6])
        pos = int(rng.integers(8 + 4 * 32, len(b)))
        b[pos] ^= 1 << int(rng.integers(8))
        bad[6] = bytes(b)
        try:
            out = rans.decode_batch(bad, idxs, t)
            assert [o.shape for o in out] == [s.shape for s in syms]
        except BitstreamError as e:
            assert "stream 6" in str(e)
            caught += 1
    assert caught >= 25


def test_batch_bad_arguments():
    t = gaussian_tables([1.0])
    z = np.zeros(3, np.int32)
    assert rans.encode_batch([], [], t) == [] and rans.decode_batch([], [], t) == []
    with pytest.raises(ValueError):
        rans.encode_batch([z], [z, z], t)
    with pytest.raises(ValueError):
        rans.encode_batch([z, z], [z, z[:2]], t)
    with pytest.raises(ValueError):
        rans.encode_batch([z], [z + 1], t)
    with pytest.raises(ValueError):
        rans.encode_batch([z], [z], t, lanes=0)
    with pytest.raises(ValueError):
        rans.encode_batch([z, z], [z, z], t, lanes=[1])
    with pytest.raises(ValueError):
        rans.decode_batch([rans.encode(z, z, t)], [z, z], t)
    data = rans.encode_batch([z, z], [z, z], t)
    with pytest.raises(ValueError, match="stream 1"):
        rans.decode_batch(data, [z, z - 1], t)


def test_batch_decode_thread_count_does_not_matter():
    import numba

    t = gaussian_tables()
    syms, idxs = _gaussian_batch(count=5, n=2000, seed=3)
    data = rans.encode_batch(syms, idxs, t, lanes=[1, 8, 32, 64, 4096])
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = rans.decode_batch(data, idxs, t)
        assert rans.encode_batch(syms, idxs, t, lanes=[1, 8, 32, 64, 4096]) == data
    finally:
        numba.set_num_threads(before)
    for a, b in zip(one, rans.decode_batch(data, idxs, t)):
        np.testing.assert_array_equal(a, b)


def test_dispatch_batch_cpu_and_forced_kernel(monkeypatch):
    import torch

    from neurocodec.entropy import dispatch

    t = gaussian_tables()
    syms, idxs = _gaussian_batch(count=3, n=40, seed=9)
    ref = [rans.encode(s, i, t, lanes=16) for s, i in zip(syms, idxs)]
    assert dispatch.encode_batch(syms, idxs, t, lanes=16) == ref
    for a, b in zip(dispatch.decode_batch(ref, idxs, t), syms):
        np.testing.assert_array_equal(a, b)
    monkeypatch.setenv(dispatch.KERNEL_ENV, "1")
    ts, ti = [torch.from_numpy(s) for s in syms], [torch.from_numpy(i) for i in idxs]
    assert dispatch.encode_batch(ts, ti, t, lanes=16) == ref
    for a, b in zip(dispatch.decode_batch(ref, ti, t), syms):
        np.testing.assert_array_equal(a.numpy(), b)


def test_work_queue_hands_out_every_item_once():
    """The shared counter of the batch kernels: every item goes to exactly one worker, on
    any number of threads, also when there are more workers than items."""
    import numba

    from neurocodec.entropy.work_queue import take, workers

    @numba.njit(parallel=True)
    def claim(n, n_workers, hits, owner):
        counter = np.zeros(1, np.int64)
        for w in numba.prange(n_workers):
            while True:
                i = take(counter, n)
                if i < 0:
                    break
                hits[i] += 1
                owner[i] = w

    before = numba.get_num_threads()
    try:
        for threads in sorted({1, before}):
            numba.set_num_threads(threads)
            for n, n_workers in ((10_000, workers(10_000)), (3, 8), (0, workers(0))):
                hits, owner = np.zeros(n, np.int64), np.full(n, -1, np.int64)
                claim(n, n_workers, hits, owner)
                assert (hits == 1).all() and (owner >= 0).all()
            assert workers(10_000) == threads and workers(0) == 1
    finally:
        numba.set_num_threads(before)


def test_batch_decode_into_a_caller_buffer():
    t = gaussian_tables()
    syms, idxs = _gaussian_batch(count=4, n=700, seed=5)
    data = rans.encode_batch(syms, idxs, t)
    buf = np.full(4 * 700 + 9, -7, np.int32)
    got = rans.decode_batch(data, idxs, t, out=buf)
    for a, b in zip(got, syms):
        np.testing.assert_array_equal(a, b)
        assert np.shares_memory(a, buf)
    assert (buf[-9:] == -7).all()  # only the streams' symbols are written
    one = rans.decode_batch(data[:1], idxs[:1], t, out=buf)  # one stream: into the buffer too
    assert np.shares_memory(one[0], buf) and np.array_equal(one[0], syms[0])
    for bad, match in ((np.zeros(4 * 700, np.int64), "int32"), (buf[::2], "C-contiguous"),
                       (np.zeros(10, np.int32), "holds 10 symbols"), ([0] * 2800, "int32")):
        with pytest.raises(ValueError, match=match):
            rans.decode_batch(data, idxs, t, out=bad)
