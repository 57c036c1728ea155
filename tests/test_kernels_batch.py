"""The batched Triton kernels and the plain-torch batch decoder against the CPU batch coder,
and the GPU benchmark's CPU side (argument parsing, data preparation, a tiny full run under the
interpreter), so that it cannot rot without a GPU. Interpreter sizes stay tiny (few steps)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from neurocodec.entropy import rans
from neurocodec.entropy.tables import default_scale_table, gaussian_tables, scale_indexes
from neurocodec.errors import BitstreamError
from neurocodec.kernels import rans_torch, rans_triton

ROOT = Path(__file__).resolve().parents[1]


def _batch(sizes, seed=0):
    rng = np.random.default_rng(seed)
    syms, idxs = [], []
    for n in sizes:
        sc = np.exp(rng.uniform(np.log(0.11), np.log(60), n))
        syms.append(np.rint(rng.normal(0, sc)).astype(np.int32))
        idxs.append(scale_indexes(sc, default_scale_table()))
    if sizes[0] > 3:
        syms[0][[1, 3]] = [np.iinfo(np.int32).max, np.iinfo(np.int32).min]  # escapes
    return syms, idxs


@pytest.mark.parametrize("precision", [12, 16])
def test_triton_batch_matches_cpu_batch(precision):
    t = gaussian_tables(precision=precision)
    syms, idxs = _batch([70, 0, 33, 96, 5], seed=precision)
    lanes = [16, 4, 32, 40, 1]
    ref = rans.encode_batch(syms, idxs, t, lanes=lanes)
    tsyms = [torch.from_numpy(s) for s in syms]
    tidxs = [torch.from_numpy(i) for i in idxs]
    assert rans_triton.encode_batch(tsyms, tidxs, t, lanes=lanes) == ref
    for got, want in zip(rans_triton.decode_batch(ref, tidxs, t), syms):
        np.testing.assert_array_equal(got.numpy(), want)
    for got, want in zip(rans_torch.decode_batch(ref, idxs, t), syms):
        np.testing.assert_array_equal(got.numpy(), want)


def test_batch_decoders_name_the_bad_stream():
    t = gaussian_tables()
    syms, idxs = _batch([40, 40, 40], seed=4)
    data = rans.encode_batch(syms, idxs, t, lanes=16)
    tidxs = [torch.from_numpy(i) for i in idxs]
    assert rans_triton.decode_batch([], [], t) == [] and rans_torch.decode_batch([], [], t) == []
    for dec in (lambda d: rans_triton.decode_batch(d, tidxs, t),
                lambda d: rans_torch.decode_batch(d, idxs, t)):
        with pytest.raises(BitstreamError, match="stream 1"):
            dec([data[0], data[1][:-2], data[2]])
        bad = bytearray(data[2])
        bad[8 + 4 * 16 + 3] ^= 0x40  # the first word of lane 0's segment
        with pytest.raises(BitstreamError, match="stream 2"):
            dec([data[0], data[1], bytes(bad)])


def _bench():
    spec = importlib.util.spec_from_file_location("entropy_gpu", ROOT / "benchmarks" /
                                                  "entropy_gpu.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_gpu_benchmark_defaults_and_preparation():
    b = _bench()
    a = b.parse_args([])
    rans.check_lanes(a.lanes)  # the defaults are valid (they were not: --lanes 65536)
    assert (a.streams, a.n, a.device) == (4096, 4096, "cuda")
    with pytest.raises(ValueError):
        b.parse_args(["--lanes", "65536"])
    small = b.parse_args(["--streams", "3", "--n", "200", "--lanes", "16"])
    d = b.prepare(small)
    assert len(d["streams"]) == 3 and d["total"] == 600
    for s, i, data in zip(d["syms"], d["idxs"], d["streams"]):
        np.testing.assert_array_equal(rans.decode(data, i, d["tables"]), s)


def test_gpu_benchmark_without_cuda_exits_cleanly(capsys, monkeypatch):
    b = _bench()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert b.main([]) == 0
    assert "no CUDA device" in capsys.readouterr().out


def test_gpu_benchmark_runs_end_to_end_on_cpu(capsys):
    b = _bench()
    assert b.main(["--streams", "2", "--n", "48", "--lanes", "16", "--repeat", "1",
                   "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "Gsym/s" in out and "ratio Triton/CPU" in out
