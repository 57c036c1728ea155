"""Bjøntegaard deltas on CompressAI-schema results, through the ``bjontegaard`` package."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np


def load_results(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def _curve(res: dict, metric: str) -> tuple[np.ndarray, np.ndarray]:
    r = res["results"]
    rate, dist = np.asarray(r["bpp"], float), np.asarray(r[metric], float)
    order = np.argsort(rate)
    return rate[order], dist[order]


def bd_rate(anchor: dict, test: dict, metric: str = "psnr-rgb", method: str = "pchip") -> dict:
    """BD-rate (%) of ``test`` against ``anchor`` over their overlapping quality range.

    Returns ``{"bd_rate", "bd_psnr", "overlap"}``; ``overlap`` is the fraction of the joint
    quality range both curves cover (below ~0.75 the figure rests on a narrow range).
    """
    import bjontegaard as bd

    ra, da = _curve(anchor, metric)
    rt, dt = _curve(test, metric)
    lo, hi = max(da.min(), dt.min()), min(da.max(), dt.max())
    overlap = max(hi - lo, 0) / (max(da.max(), dt.max()) - min(da.min(), dt.min()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rate = bd.bd_rate(ra, da, rt, dt, method=method, require_matching_points=False,
                          min_overlap=0)
        psnr = bd.bd_psnr(ra, da, rt, dt, method=method, require_matching_points=False,
                          min_overlap=0)
    return {"bd_rate": float(rate), "bd_psnr": float(psnr), "overlap": float(overlap)}
