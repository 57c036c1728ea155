"""CPU batch rANS: decode_batch/encode_batch on one thread vs all cores, measured interleaved.

A batch of streams (default 512 x 16,384 symbols, 8M in all; per-symbol Gaussian scales
log-uniform in [0.11, 20], the default 16-bit scale tables, 32 lanes per stream — the data of
benchmarks/entropy.py cut into streams). Single-thread and all-core runs alternate (the machine
may be shared: alternating exposes both to the same load); the best of each is reported, and
the median of the per-round ratios beside it, and the CPU time the all-core run spends over
the single-thread one (the work threading adds; what the ratio would be on an idle machine).
Decoding is timed twice: into a fresh output array per call ("dec", what a plain call does)
and into one reused buffer (``out=``, "dec_out"), which leaves out the page faults of a
fresh 32 MB array. Writes the result under "batch" in docs/results/entropy.json (other keys
kept).

    python benchmarks/entropy_batch.py [--streams 512] [--n 16384] [--lanes 32] [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numba
import numpy as np

from neurocodec.entropy import rans
from neurocodec.entropy.tables import default_scale_table, gaussian_tables, scale_indexes


def make_batch(streams: int, n: int, seed: int = 1234):
    rng = np.random.default_rng(seed)
    scales = np.exp(rng.uniform(math.log(0.11), math.log(20.0), streams * n))
    sym = np.rint(rng.normal(0.0, scales)).astype(np.int32)
    idx = scale_indexes(scales, default_scale_table())
    return list(sym.reshape(streams, n)), list(idx.reshape(streams, n))


def timed(fn):
    """Wall and CPU (all threads of this process) seconds of ``fn()``."""
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=512)
    ap.add_argument("--n", type=int, default=16384)
    ap.add_argument("--lanes", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--out", default="docs/results/entropy.json")
    a = ap.parse_args()
    tables = gaussian_tables()
    syms, idxs = make_batch(a.streams, a.n)
    total = a.streams * a.n
    cores = numba.config.NUMBA_NUM_THREADS
    data = rans.encode_batch(syms, idxs, tables, lanes=a.lanes)  # JIT warm-up
    assert all(np.array_equal(d, s) for d, s in zip(rans.decode_batch(data, idxs, tables), syms))
    assert all(np.array_equal(d, s) for d, s in zip(
        rans.decode_batch(data, idxs, tables, out=np.empty(a.streams * a.n, np.int32)), syms))
    assert data[0] == rans.encode(syms[0], idxs[0], tables, lanes=a.lanes)
    buf = np.zeros(total, dtype=np.int32)  # "dec_out": one output buffer reused by every call
    ops = ("dec", "dec_out", "enc")
    best = {(op, th): math.inf for op in ops for th in (1, cores)}
    ratios = {op: [] for op in ops}
    cpu = {(op, th): [] for op in ops for th in (1, cores)}
    for _ in range(a.rounds):
        for op, fn in (("dec", lambda: rans.decode_batch(data, idxs, tables)),
                       ("dec_out", lambda: rans.decode_batch(data, idxs, tables, out=buf)),
                       ("enc", lambda: rans.encode_batch(syms, idxs, tables, lanes=a.lanes))):
            t = {}
            for th in (1, cores):
                numba.set_num_threads(th)
                t[th], c = timed(fn)
                cpu[op, th].append(c)
                best[op, th] = min(best[op, th], t[th])
            ratios[op].append(t[1] / t[cores])
    numba.set_num_threads(cores)
    res = {"streams": a.streams, "symbols_per_stream": a.n, "lanes": a.lanes, "cores": cores,
           "threading_layer": numba.threading_layer(), "rounds": a.rounds}
    print(f"{a.streams} streams x {a.n} symbols, {a.lanes} lanes; {cores} cores "
          f"({numba.threading_layer()} threading layer), {a.rounds} interleaved rounds")
    for op in ops:
        one, many = total / best[op, 1] / 1e6, total / best[op, cores] / 1e6
        med = float(np.median(ratios[op]))
        # Work added by threading: CPU-seconds of an all-core run over a single-thread one. On
        # an idle machine the wall ratio would approach cores / overhead.
        overhead = float(np.median(cpu[op, cores]) / np.median(cpu[op, 1]))
        res[op] = {"msym_s_1_thread": one, "msym_s_all_cores": many,
                   "ratio_best": many / one, "ratio_median_of_rounds": med,
                   "ratio_per_round": [round(r, 3) for r in ratios[op]],
                   "cpu_seconds_all_cores_over_1_thread": overhead,
                   "idle_machine_ratio_from_cpu_time": cores / overhead}
        print(f"{op:7s}: 1 thread {one:7.1f} Msym/s  {cores} threads {many:7.1f} Msym/s  "
              f"ratio {many / one:.2f}x (best/best), median of rounds {med:.2f}x; "
              f"CPU time x{overhead:.2f} -> {cores / overhead:.2f}x on an idle machine")
    load = Path("/proc/loadavg")
    res["loadavg_after"] = load.read_text().split()[:3] if load.exists() else None
    res["machine"] = platform.processor() or platform.machine()
    res["date"] = time.strftime("%Y-%m-%d")
    res["command"] = "python benchmarks/entropy_batch.py"
    out = Path(a.out)
    doc = json.loads(out.read_text()) if out.exists() else {"name": "entropy-coders"}
    doc["batch"] = res
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
