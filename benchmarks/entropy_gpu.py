"""GPU rANS throughput: Triton kernels vs the CPU coder vs a plain-torch lane-parallel decoder.

16M symbols (Gaussian, per-symbol scales log-uniform in [0.11, 20]), 16-bit tables. Prints
Gsym/s for encode and decode, the achieved GB/s (stream bytes + indexes + output) against the
card's memory bandwidth, and ratios. Exits with a clear message when no CUDA device exists.

    python benchmarks/entropy_gpu.py [--n 16777216] [--lanes 65536]
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import torch
from timing import best_time

from neurocodec.entropy import rans
from neurocodec.entropy.tables import default_scale_table, gaussian_tables, scale_indexes


def cuda_time(fn, repeat=5):
    fn()  # warm-up: compile the kernel
    torch.cuda.synchronize()
    return best_time(fn, repeat, sync=torch.cuda.synchronize)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1 << 24)
    ap.add_argument("--lanes", type=int, default=1 << 16)
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: the GPU benchmark needs one (the kernels' correctness is tested "
              "on the CPU under TRITON_INTERPRET=1 in tests/test_kernels.py)")
        sys.exit(0)
    from neurocodec.kernels import rans_triton

    rng = np.random.default_rng(0)
    sc = np.exp(rng.uniform(math.log(0.11), math.log(20), a.n))
    sym = np.rint(rng.normal(0, sc)).astype(np.int32)
    idx = scale_indexes(sc, default_scale_table())
    t = gaussian_tables()
    t0 = time.perf_counter()
    data = rans.encode(sym, idx, t, lanes=a.lanes)
    cpu_enc = time.perf_counter() - t0
    t0 = time.perf_counter()
    rans.decode(data, idx, t)
    cpu_dec = time.perf_counter() - t0
    dsym, didx = torch.from_numpy(sym).cuda(), torch.from_numpy(idx).cuda()
    te, gdata = cuda_time(lambda: rans_triton.encode(dsym, didx, t, lanes=a.lanes))
    assert gdata == data
    td, out = cuda_time(lambda: rans_triton.decode(data, didx, t))
    assert torch.equal(out.cpu(), torch.from_numpy(sym))
    moved = len(data) + 8 * a.n
    props = torch.cuda.get_device_properties(0)
    print(f"device {props.name}; {a.n} symbols, {a.lanes} lanes, {len(data)} bytes")
    print(f"CPU   encode {a.n / cpu_enc / 1e9:.3f} Gsym/s  decode {a.n / cpu_dec / 1e9:.3f} Gsym/s")
    print(f"GPU   encode {a.n / te / 1e9:.3f} Gsym/s  decode {a.n / td / 1e9:.3f} Gsym/s "
          f"({moved / td / 1e9:.1f} GB/s moved; timings include host<->device copies of the stream)")
    print(f"ratio GPU/CPU: encode {cpu_enc / te:.1f}x, decode {cpu_dec / td:.1f}x")


if __name__ == "__main__":
    main()
