"""Per-scene table of a ``neurocodec bench splat`` run: our bytes at SPZ's and SOG's render
PSNR (log-bytes interpolated along our curve), and seconds per 100k Gaussians.

    python benchmarks/splat_table.py docs/results/splat [ours]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def _points(out: Path, name: str) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    for p in json.loads((out / f"{name}.json").read_text())["per_image"]:
        rows.setdefault(p["item"], []).append(p)
    return rows


def bytes_at(curve: list[dict], psnr: float) -> float | None:
    c = sorted(curve, key=lambda p: p["psnr-rgb"])
    x = np.array([p["psnr-rgb"] for p in c])
    y = np.log([p["bytes"] for p in c])
    if psnr < x[0] or psnr > x[-1]:
        return None
    return float(np.exp(np.interp(psnr, x, y)))


def main(out: str, ours: str = "gsc") -> None:
    out = Path(out)
    us, spz, sog = (_points(out, n) for n in (ours, "spz", "sog"))
    print(f"| scene | Gaussians | SPZ bytes (dB) | SOG bytes (dB) | {ours} at SPZ dB | "
          f"{ours} at SOG dB | vs SPZ | vs SOG | enc / dec s per 100k |")
    print("|---|---|---|---|---|---|---|---|---|")
    for item in sorted(us):
        c = us[item]
        n = c[0]["bytes"] * 8 / c[0]["bpg"]
        a, b = spz[item][0], sog[item][0]
        at_a, at_b = bytes_at(c, a["psnr-rgb"]), bytes_at(c, b["psnr-rgb"])
        enc = np.mean([p["encoding_time"] for p in c]) / n * 1e5
        dec = np.mean([p["decoding_time"] for p in c]) / n * 1e5

        def f(v):
            return "out of range" if v is None else f"{v:,.0f}"

        def r(v, ref):
            return "—" if v is None else f"{v / ref['bytes']:.2f}x"
        print(f"| {item} | {n:,.0f} | {a['bytes']:,} ({a['psnr-rgb']:.2f}) | {b['bytes']:,} "
              f"({b['psnr-rgb']:.2f}) | {f(at_a)} | {f(at_b)} | {r(at_a, a)} | {r(at_b, b)} | "
              f"{enc:.2f} / {dec:.2f} |")
    print()
    print(f"{ours} curve per scene (bytes, render PSNR dB):")
    for item in sorted(us):
        pts = sorted(us[item], key=lambda p: p["bytes"])
        print(f"- {item}: " + ", ".join(f"q{p['knob']} {p['bytes']:,} / {p['psnr-rgb']:.2f}"
                                         for p in pts))


if __name__ == "__main__":
    main(*sys.argv[1:])
