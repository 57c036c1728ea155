"""Entropy-coder benchmark: ours vs CompressAI's rANS vs constriction, on the same data.

5M symbols; per-symbol Gaussian scales log-uniform in [0.11, 20]; symbols drawn from those
Gaussians and rounded. Ours and CompressAI code with the same 16-bit scale tables (64 scales,
0.11..256); constriction codes each symbol with its exact scale (QuantizedGaussian, 24-bit).
Prints encode/decode Msym/s, bits/symbol against the ideal cross-entropy of the model each
coder is given, the ratios, and writes docs/results/entropy.json.

    python benchmarks/entropy.py [--n 5000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
from timing import best_time

from neurocodec.entropy import rans
from neurocodec.entropy.tables import default_scale_table, gaussian_tables, scale_indexes


def gaussian_bits(sym: np.ndarray, scales: np.ndarray) -> float:
    """Ideal bits: -log2 P(sym) of the integer-discretized zero-mean Gaussian, float64."""
    from math import erfc, sqrt

    def phi(v):
        return 0.5 * np.vectorize(erfc)(-v / sqrt(2.0))

    a = np.abs(sym.astype(np.float64))
    upper = phi((0.5 - a) / scales)
    lower = phi((-0.5 - a) / scales)
    return float(-np.log2(np.maximum(upper - lower, 1e-300)).sum())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default="docs/results/entropy.json")
    args = ap.parse_args()
    n = args.n
    rng = np.random.default_rng(1234)
    scales = np.exp(rng.uniform(math.log(0.11), math.log(20.0), n))
    sym = np.rint(rng.normal(0.0, scales)).astype(np.int32)
    table_scales = default_scale_table()
    tables = gaussian_tables(table_scales, precision=16)
    idx = scale_indexes(scales, table_scales)
    ideal_exact = gaussian_bits(sym, scales) / n
    ideal_table = gaussian_bits(sym, table_scales[idx]) / n
    res = {}

    rans.decode(rans.encode(sym[:1000], idx[:1000], tables), idx[:1000], tables)  # JIT warm-up
    te, data = best_time(lambda: rans.encode(sym, idx, tables), args.repeat)
    td, dec = best_time(lambda: rans.decode(data, idx, tables), args.repeat)
    assert np.array_equal(dec, sym)
    res["neurocodec"] = dict(enc=n / te / 1e6, dec=n / td / 1e6, bps=8 * len(data) / n,
                             ideal=ideal_table)

    from compressai.ans import RansDecoder, RansEncoder

    cdfs = [tables.cdf[k, : tables.lengths[k] + 1].tolist() for k in range(tables.num_tables)]
    lens = (tables.lengths + 1).tolist()
    offs = tables.offsets.tolist()
    sl, il = sym.tolist(), idx.tolist()
    te, cdata = best_time(lambda: RansEncoder().encode_with_indexes(sl, il, cdfs, lens, offs),
                          args.repeat)
    td, cdec = best_time(lambda: RansDecoder().decode_with_indexes(cdata, il, cdfs, lens, offs),
                         args.repeat)
    assert np.array_equal(np.asarray(cdec, np.int32), sym)
    res["compressai"] = dict(enc=n / te / 1e6, dec=n / td / 1e6, bps=8 * len(cdata) / n,
                             ideal=ideal_table)

    import constriction

    lim = int(np.abs(sym).max()) + 1
    model = constriction.stream.model.QuantizedGaussian(-lim, lim)
    means = np.zeros(n, np.float64)

    def c_enc():
        c = constriction.stream.stack.AnsCoder()
        c.encode_reverse(sym, model, means, scales)
        return c.get_compressed()

    te, words = best_time(c_enc, args.repeat)
    td, cdec = best_time(lambda: constriction.stream.stack.AnsCoder(words).decode(
        model, means, scales), args.repeat)
    assert np.array_equal(np.asarray(cdec, np.int32), sym)
    res["constriction"] = dict(enc=n / te / 1e6, dec=n / td / 1e6, bps=32 * len(words) / n,
                               ideal=ideal_exact)

    print(f"{n} symbols; ideal bits/sym: {ideal_exact:.5f} exact scales, "
          f"{ideal_table:.5f} table scales")
    print(f"{'coder':14s} {'enc Msym/s':>10s} {'dec Msym/s':>10s} {'bits/sym':>9s} {'over ideal':>10s}")
    for k, r in res.items():
        r["overhead_pct"] = 100 * (r["bps"] / r["ideal"] - 1)
        print(f"{k:14s} {r['enc']:10.1f} {r['dec']:10.1f} {r['bps']:9.5f} {r['overhead_pct']:9.3f}%")
    ours, ca, co = res["neurocodec"], res["compressai"], res["constriction"]
    ratios = {"enc_vs_compressai": ours["enc"] / ca["enc"], "dec_vs_compressai": ours["dec"] / ca["dec"],
              "enc_vs_constriction": ours["enc"] / co["enc"],
              "dec_vs_constriction": ours["dec"] / co["dec"]}
    for k, v in ratios.items():
        print(f"ratio {k}: {v:.2f}x")
    out = Path(args.out)
    doc = {"name": "entropy-coders", "description": __doc__.strip().splitlines()[0],
           "n_symbols": n, "machine": platform.processor() or platform.machine(),
           "date": time.strftime("%Y-%m-%d"), "coders": res, "ratios": ratios,
           "command": "python benchmarks/entropy.py"}
    if out.exists() and "batch" in (old := json.loads(out.read_text())):
        doc["batch"] = old["batch"]  # written by benchmarks/entropy_batch.py
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
