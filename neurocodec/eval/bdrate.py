"""Bjøntegaard deltas on CompressAI-schema results, through the ``bjontegaard`` package.

pchip (the JVET CTC sheet's interpolation) by default; ``cubic`` and ``akima`` selectable.
Both deltas are integrated over the overlap of the two curves' quality (BD-rate) or log-rate
(BD-PSNR) ranges only — nothing is extrapolated — so a small overlap means the figure describes
a narrow part of the curves: :func:`bd_rate` returns the overlap and a warning for it.
MS-SSIM is compared in dB, ``-10·log10(1 − MS-SSIM)``, as CompressAI plots it.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np

from neurocodec.eval.metrics import msssim_db

METHODS = ("pchip", "cubic", "akima")
MIN_OVERLAP = 0.5  # below this the figure is flagged in reports


def load_results(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def _curve(res: dict, metric: str, rate_key: str = "bpp") -> tuple[np.ndarray, np.ndarray]:
    r = res["results"]
    rate, dist = np.asarray(r[rate_key], float), np.asarray(r[metric], float)
    if metric.startswith("ms-ssim"):
        dist = msssim_db(dist)
    keep = np.isfinite(rate) & np.isfinite(dist) & (rate > 0)
    rate, dist = rate[keep], dist[keep]
    order = np.argsort(rate, kind="stable")
    rate, dist = rate[order], dist[order]
    # The interpolators need quality strictly increasing with rate: keep the Pareto front
    # (a point that costs more bits for no better quality is dominated by a cheaper one).
    front = np.array([i == 0 or dist[i] > dist[:i].max() for i in range(len(dist))], bool)
    return rate[front], dist[front]


def _dominated(res: dict, metric: str, rate_key: str) -> int:
    r = res["results"]
    n = sum(1 for a, b in zip(r[rate_key], r[metric]) if np.isfinite([a, b]).all() and a > 0)
    return n - len(_curve(res, metric, rate_key)[0])


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    lo, hi = max(a.min(), b.min()), min(a.max(), b.max())
    span = max(a.max(), b.max()) - min(a.min(), b.min())
    return float(max(hi - lo, 0) / span) if span > 0 else 0.0


def bd_rate(anchor: dict, test: dict, metric: str = "psnr-rgb", method: str = "pchip",
            rate_key: str = "bpp") -> dict:
    """BD-rate (%) and BD-quality (dB) of ``test`` against ``anchor``.

    Returns ``{"bd_rate", "bd_psnr", "overlap", "warning"}``: ``overlap`` is the fraction of
    the joint quality range both curves cover; ``warning`` is None or why the figure is weak
    (little or no overlap, fewer than 4 points). BD values are NaN when the curves do not
    overlap at all.
    """
    import bjontegaard as bd

    if method not in METHODS:
        raise ValueError(f"unknown BD interpolation {method!r} (known: {', '.join(METHODS)})")
    ra, da = _curve(anchor, metric, rate_key)
    rt, dt = _curve(test, metric, rate_key)
    if min(len(ra), len(rt)) < 2:
        return {"bd_rate": math.nan, "bd_psnr": math.nan, "overlap": 0.0,
                "warning": "fewer than 2 points"}
    overlap = _overlap(da, dt)
    warning = None
    if overlap == 0:
        warning = "curves do not overlap in quality: no BD-rate"
    elif overlap < MIN_OVERLAP:
        warning = f"quality ranges overlap by only {overlap:.0%}: the figure covers a narrow range"
    elif min(len(ra), len(rt)) < 4:
        warning = "fewer than 4 points on a curve"
    dropped = _dominated(anchor, metric, rate_key) + _dominated(test, metric, rate_key)
    if dropped and warning is None:
        warning = f"{dropped} dominated point(s) left out (quality not increasing with rate)"
    rate_overlap = _overlap(np.log10(ra), np.log10(rt))
    if rate_overlap == 0 and warning is None:
        warning = "bit-rate ranges do not overlap: no BD-PSNR"
    if overlap == 0:
        return {"bd_rate": math.nan, "bd_psnr": math.nan, "overlap": 0.0, "warning": warning}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rate = bd.bd_rate(ra, da, rt, dt, method=method, require_matching_points=False,
                          min_overlap=0)
        psnr = bd.bd_psnr(ra, da, rt, dt, method=method, require_matching_points=False,
                          min_overlap=0)
    return {"bd_rate": float(rate), "bd_psnr": float(psnr), "overlap": overlap,
            "warning": warning}
