"""BD-rate of one codec's curve merged from several CompressAI-schema files (e.g. the bench's
points and extra budgets fitted by benchmarks/video_inr.py) against reference curves.

    python benchmarks/video_bd.py --curve docs/results/video/bunny-640x360/hnerv.json \
        --curve docs/results/video/bunny-640x360/hnerv-121k-inr.json \
        --ref docs/results/video/bunny-640x360/x264.json --ref .../x265.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

METRICS = ("bpp", "psnr-rgb", "ms-ssim-rgb")


def merge(curves: list[dict]) -> dict:
    """One curve of every point of ``curves``, sorted by rate."""
    points = sorted(p for c in curves for p in zip(*(c["results"][k] for k in METRICS)))
    return {"name": curves[0]["name"],
            "results": {k: [p[i] for p in points] for i, k in enumerate(METRICS)}}


def against(test: dict, refs: list[str]) -> list[dict]:
    """Print and return the BD-rate of curve ``test`` against each reference file."""
    from neurocodec.eval.bdrate import bd_rate

    rows = []
    for f in refs:
        r = json.loads(Path(f).read_text())
        bd = bd_rate(r, test)
        rows.append({"reference": r["name"], **bd})
        print(f"vs {r['name']}: BD-rate {bd['bd_rate']:+.1f}%  BD-PSNR {bd['bd_psnr']:+.2f} dB  "
              f"overlap {bd['overlap']:.2f}" + (f"  ({bd['warning']})" if bd["warning"] else ""))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--curve", action="append", required=True)
    p.add_argument("--ref", action="append", required=True)
    a = p.parse_args()
    test = merge([json.loads(Path(f).read_text()) for f in a.curve])
    for b, q in zip(test["results"]["bpp"], test["results"]["psnr-rgb"]):
        print(f"{test['name']}: {b:.4f} bpp {q:.2f} dB")
    against(test, a.ref)


if __name__ == "__main__":
    main()
