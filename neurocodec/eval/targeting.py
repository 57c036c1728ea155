"""Quality targeting: bisect a baseline's knob until its file hits a target bpp."""

from __future__ import annotations

import numpy as np

from neurocodec.eval.baselines import Baseline
from neurocodec.eval.metrics import bpp


def find_knob(b: Baseline, img: np.ndarray, target_bpp: float, max_steps: int = 10,
              rel_tol: float = 0.01) -> tuple[float, bytes]:
    """The knob setting whose bitstream's bpp is closest to ``target_bpp`` on ``img``.

    Assumes bpp is monotone in the knob (true of every baseline here, up to encoder noise).
    Integer knobs stop when the bracket closes; real-valued ones after ``max_steps`` halvings
    or within ``rel_tol`` of the target. Returns ``(knob, bitstream)``.
    """
    if b.knob is None:
        raise ValueError(f"{b.name} has no continuous quality knob to target")
    k = b.knob
    lo, hi = float(k.lo), float(k.hi)
    best: tuple[float, float, bytes] | None = None  # (|error|, knob, data)
    for _ in range(max_steps):
        mid = (lo + hi) / 2
        if k.integer:
            mid = float(int(round(mid)))
        data = b.encode(img, int(mid) if k.integer else mid)
        rate = bpp(len(data), img.shape)
        err = abs(rate - target_bpp)
        if best is None or err < best[0]:
            best = (err, mid, data)
        if err <= rel_tol * target_bpp:
            break
        # move towards more bits when below the target
        if (rate < target_bpp) == k.rate_increases:
            lo = mid
        else:
            hi = mid
        if k.integer and hi - lo <= 1:
            for edge in (lo, hi):
                if edge != mid and k.lo <= edge <= k.hi:
                    d2 = b.encode(img, int(edge))
                    e2 = abs(bpp(len(d2), img.shape) - target_bpp)
                    if e2 < best[0]:
                        best = (e2, edge, d2)
            break
    _, knob, data = best
    return (int(knob) if k.integer else knob), data
