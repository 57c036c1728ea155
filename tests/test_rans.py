import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurocodec.entropy import rans
from neurocodec.entropy.tables import (
    default_scale_table,
    gaussian_tables,
    laplace_tables,
    pmf_tables,
    scale_indexes,
)
from neurocodec.errors import BitstreamError

I32 = np.iinfo(np.int32)


@st.composite
def coding_case(draw):
    precision = draw(st.integers(12, 16))
    k = draw(st.integers(1, 4))
    pmfs, offsets = [], []
    for _ in range(k):
        m = draw(st.integers(1, 40))
        w = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=m, max_size=m)))
        pmfs.append(w / w.sum() * 0.999 if w.sum() > 0 else np.full(m, 0.999 / m))
        offsets.append(draw(st.integers(-50, 50)))
    n = draw(st.sampled_from([0, 1, 2, 3, 31, 33, 257, 1000]))
    lanes = draw(st.sampled_from([1, 2, 3, 7, 32, 64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    idx = rng.integers(0, k, n).astype(np.int32)
    sym = np.array(offsets, np.int64)[idx] + rng.integers(-3, 42, n)
    extremes = np.array([I32.max, I32.min, 0, -1, 1 << 20, -(1 << 20)])
    if n:
        where = rng.random(n) < 0.05
        sym[where] = rng.choice(extremes, where.sum())
    return pmf_tables(pmfs, precision, np.array(offsets)), sym.astype(np.int32), idx, lanes


@settings(max_examples=150, deadline=None)
@given(coding_case())
def test_round_trip(case):
    tables, sym, idx, lanes = case
    data = rans.encode(sym, idx, tables, lanes=lanes)
    np.testing.assert_array_equal(rans.decode(data, idx, tables), sym)


def test_all_int32_extremes_escape():
    t = gaussian_tables([0.5, 3.0])
    sym = np.array([I32.min, I32.max, 0, 1, -1, 12345678, -99999999], np.int32)
    idx = np.array([0, 1, 0, 1, 0, 1, 0], np.int32)
    np.testing.assert_array_equal(rans.decode(rans.encode(sym, idx, t), idx, t), sym)


def test_default_tables_are_pinned():
    # The exact bytes matter: encoder and decoder on different machines must agree.
    t = gaussian_tables()
    assert t.num_tables == 64 and t.precision == 16
    assert np.all(np.diff(t.cdf, axis=1) >= 0)
    freqs = [np.diff(t.cdf[k, : t.lengths[k] + 1]) for k in range(t.num_tables)]
    assert all(f.min() >= 1 and f.sum() == 1 << 16 for f in freqs)
    assert t.digest() == "7ab39ab23b08542d77500dd21bd08df87ba7360ee1311dfc4a943080c483be42"


def test_laplace_tables_round_trip():
    t = laplace_tables([0.3, 2.0, 30.0], precision=14)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 3, 5000).astype(np.int32)
    sym = np.rint(rng.laplace(0, np.array([0.3, 2.0, 30.0])[idx])).astype(np.int32)
    np.testing.assert_array_equal(rans.decode(rans.encode(sym, idx, t), idx, t), sym)


def test_rate_matches_constriction():
    constriction = pytest.importorskip("constriction")
    rng = np.random.default_rng(7)
    n = 100_000
    table_scales = default_scale_table()
    tables = gaussian_tables(table_scales)
    scales = np.exp(rng.uniform(np.log(0.2), np.log(20), n))
    sym = np.rint(rng.normal(0, scales)).astype(np.int32)
    idx = scale_indexes(scales, table_scales)
    ours = 8 * len(rans.encode(sym, idx, tables))
    # constriction codes the same quantized model: the categorical of each table's freqs.
    coder = constriction.stream.stack.AnsCoder()
    order = np.argsort(idx, kind="stable")
    for k in np.unique(idx)[::-1]:
        f = np.diff(tables.cdf[k, : tables.lengths[k] + 1]).astype(np.float64)
        model = constriction.stream.model.Categorical(f / f.sum(), perfect=False)
        sel = order[idx[order] == k]
        coder.encode_reverse((sym[sel] - tables.offsets[k]).astype(np.int32), model)
    theirs = coder.num_bits()
    assert abs(ours / theirs - 1) < 0.01


def test_truncated_and_corrupted_streams_raise():
    t = gaussian_tables()
    rng = np.random.default_rng(3)
    scales = np.exp(rng.uniform(np.log(0.2), np.log(20), 20_000))
    sym = np.rint(rng.normal(0, scales)).astype(np.int32)
    idx = scale_indexes(scales, default_scale_table())
    data = rans.encode(sym, idx, t)
    for cut in [0, 3, 8, 40, len(data) // 2, len(data) - 2, len(data) - 1]:
        with pytest.raises(BitstreamError):
            rans.decode(data[:cut], idx, t)
    with pytest.raises(BitstreamError):
        rans.decode(data + b"\0\0", idx, t)
    with pytest.raises(BitstreamError):
        rans.decode(data, idx[:-1], t)
    bad = bytearray(data)
    bad[0] = 9  # version
    with pytest.raises(BitstreamError):
        rans.decode(bytes(bad), idx, t)
    # A huge declared symbol count is refused before anything is allocated.
    bad = bytearray(data)
    bad[4:8] = (2**32 - 1).to_bytes(4, "little")
    with pytest.raises(BitstreamError):
        rans.decode(bytes(bad), idx, t)
    caught = 0
    for _ in range(50):
        bad = bytearray(data)
        pos = int(rng.integers(8 + 4 * 32, len(bad)))
        bad[pos] ^= 1 << int(rng.integers(8))
        try:
            out = rans.decode(bytes(bad), idx, t)
            assert out.shape == sym.shape
        except BitstreamError:
            caught += 1
    assert caught >= 45


def test_bad_arguments():
    t = gaussian_tables([1.0])
    with pytest.raises(ValueError):
        rans.encode(np.zeros(3, np.int32), np.array([0, 1, 0], np.int32), t)
    with pytest.raises(ValueError):
        rans.encode(np.zeros(3, np.int32), np.zeros(2, np.int32), t)
    with pytest.raises(ValueError):
        rans.encode(np.array([2**40]), np.zeros(1, np.int32), t)
    with pytest.raises(ValueError):
        rans.encode(np.zeros(3, np.int32), np.zeros(3, np.int32), t, lanes=0)
    with pytest.raises(ValueError):
        pmf_tables([[0.5, np.nan]])
    with pytest.raises(ValueError):
        gaussian_tables([0.0])
