"""GPU rANS throughput on a batch: the batched Triton kernels vs the CPU batch coder (all
cores) vs a plain-torch lane-parallel decoder, every result checked equal.

Default: 4,096 streams x 4,096 symbols (16M symbols; per-symbol Gaussian scales log-uniform
in [0.11, 20], the default 16-bit scale tables, 32 lanes per stream — the data of
benchmarks/entropy.py and entropy_batch.py). Prints Gsym/s and GB/s (stream bytes + 4-byte
index + 4-byte symbol per symbol) of the kernel alone (CUDA events, data resident on the GPU)
and end to end (host layout and copies included), and ratios. Without CUDA it says so and
exits 0; tests/test_kernels_batch.py runs its parsing and data preparation on the CPU.

    python benchmarks/entropy_gpu.py [--streams 4096] [--n 4096] [--lanes 32] [--repeat 5]
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numba
import numpy as np
import torch

from neurocodec.entropy import rans
from neurocodec.entropy.tables import default_scale_table, gaussian_tables, scale_indexes


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, default=4096)
    ap.add_argument("--n", type=int, default=4096, help="symbols per stream")
    ap.add_argument("--lanes", type=int, default=32, help="lanes per stream (1..4096)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-torch", action="store_true", help="skip the plain-torch decoder")
    ap.add_argument("--device", default="cuda",
                    help="cuda, or cpu to smoke-test the whole script under TRITON_INTERPRET=1")
    a = ap.parse_args(argv)
    rans.check_lanes(a.lanes)
    if a.streams < 1 or a.n < 0 or a.repeat < 1:
        ap.error("--streams and --repeat must be >= 1, --n >= 0")
    return a


def prepare(a: argparse.Namespace, seed: int = 1234) -> dict:
    """The batch (symbols, indexes, tables) and its streams from the CPU batch encoder."""
    rng = np.random.default_rng(seed)
    total = a.streams * a.n
    scales = np.exp(rng.uniform(math.log(0.11), math.log(20.0), total))
    sym = np.rint(rng.normal(0.0, scales)).astype(np.int32)
    tables = gaussian_tables()
    idx = scale_indexes(scales, default_scale_table())
    syms, idxs = list(sym.reshape(a.streams, a.n)), list(idx.reshape(a.streams, a.n))
    streams = rans.encode_batch(syms, idxs, tables, lanes=a.lanes)
    return {"tables": tables, "syms": syms, "idxs": idxs, "streams": streams, "total": total,
            "bytes": sum(len(s) for s in streams)}


def _best(fn, repeat, sync=None):
    best, out = math.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        if sync:
            sync()
        best = min(best, time.perf_counter() - t)
    return best, out


def _kernel_time(fn, repeat, dev) -> float:
    """Best of ``repeat`` CUDA-event timings of ``fn`` (after one warm-up/compile call)."""
    fn()
    if dev.type != "cuda":
        return _best(fn, repeat)[0]
    torch.cuda.synchronize()
    best = math.inf
    for _ in range(repeat):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        fn()
        e1.record()
        torch.cuda.synchronize()
        best = min(best, e0.elapsed_time(e1) / 1e3)
    return best


def main(argv=None) -> int:
    a = parse_args(argv)
    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("entropy_gpu: no CUDA device, nothing to measure (the kernels are checked on the "
              "CPU under TRITON_INTERPRET=1 in tests/test_kernels*.py, and compiled for sm_80/"
              "sm_90 in tests/test_kernel_compile.py)")
        return 0
    from neurocodec.kernels import rans_torch, rans_triton

    d = prepare(a)
    t, syms, idxs, streams, total = d["tables"], d["syms"], d["idxs"], d["streams"], d["total"]
    ref = np.concatenate(syms)
    moved_dec = d["bytes"] + 8 * total
    cores = numba.config.NUMBA_NUM_THREADS
    te_cpu, _ = _best(lambda: rans.encode_batch(syms, idxs, t, lanes=a.lanes), a.repeat)
    td_cpu, out = _best(lambda: rans.decode_batch(streams, idxs, t), a.repeat)
    assert np.array_equal(np.concatenate(out), ref)
    dsyms = [torch.from_numpy(s).to(dev) for s in syms]
    didxs = [torch.from_numpy(i).to(dev) for i in idxs]
    sync = torch.cuda.synchronize if dev.type == "cuda" else None
    rans_triton.encode_batch(dsyms[:2], didxs[:2], t, lanes=a.lanes)  # compile
    te_gpu, gstreams = _best(lambda: rans_triton.encode_batch(dsyms, didxs, t, lanes=a.lanes),
                             a.repeat, sync)
    assert gstreams == streams, "GPU batch encode differs from the CPU coder"
    rans_triton.decode_batch(streams[:2], didxs[:2], t)  # compile
    td_gpu, gout = _best(lambda: rans_triton.decode_batch(streams, didxs, t), a.repeat, sync)
    assert torch.equal(torch.cat(gout).cpu(), torch.from_numpy(ref))
    prep = rans_triton.decode_batch_prepare(streams, didxs, t)
    tk = _kernel_time(lambda: rans_triton.decode_batch_run(prep), a.repeat, dev)
    assert torch.equal(prep["out"][:total].cpu(), torch.from_numpy(ref))
    assert bool((prep["status"][: prep["total"]] == 1).all())
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        name = f"{props.name} ({props.multi_processor_count} SMs)"
    else:
        name = f"{dev} (Triton interpreter: a smoke test, not a measurement)"
    print(f"device {name}; {a.streams} streams x "
          f"{a.n} symbols = {total} symbols, {a.lanes} lanes each, {d['bytes']} bytes")

    def line(name, sec, moved):
        print(f"  {name:46s} {total / sec / 1e9:8.3f} Gsym/s {moved / sec / 1e9:8.1f} GB/s")

    print("decode")
    line(f"CPU decode_batch ({cores} threads)", td_cpu, moved_dec)
    line("Triton decode_batch, end to end", td_gpu, moved_dec)
    line("Triton _decode_batch_kernel alone", tk, moved_dec)
    if not a.no_torch:
        rans_torch.decode_batch(streams[:2], idxs[:2], t, device=dev)
        tt, tout = _best(lambda: rans_torch.decode_batch(streams, idxs, t, device=dev),
                         a.repeat, sync)
        assert torch.equal(torch.cat(tout).cpu(), torch.from_numpy(ref))
        line("plain-torch lane-parallel decoder, end to end", tt, moved_dec)
    print("encode")
    line(f"CPU encode_batch ({cores} threads)", te_cpu, d["bytes"] + 8 * total)
    line("Triton encode_batch, end to end", te_gpu, d["bytes"] + 8 * total)
    print(f"ratio Triton/CPU: decode kernel {td_cpu / tk:.1f}x, decode end to end "
          f"{td_cpu / td_gpu:.1f}x, encode end to end {te_cpu / te_gpu:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
