import numpy as np
import pytest

from neurocodec.eval.baselines import BASELINES, get_baseline
from neurocodec.eval.bdrate import bd_rate
from neurocodec.eval.metrics import ms_ssim, psnr


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baseline_round_trip_monotone(name, crop_odd):
    b = get_baseline(name)
    lo, hi = b.qualities[1], b.qualities[-2]
    out = []
    for q in (lo, hi):
        data = b.encode(crop_odd, q)
        rec = b.decode(data)
        assert rec.shape == crop_odd.shape and rec.dtype == np.uint8
        out.append((len(data), psnr(crop_odd, rec)))
    # more bits, better picture: the knob really drives the real codec
    assert out[1][0] > out[0][0] and out[1][1] > out[0][1]


def test_metrics_sanity(crop_odd):
    assert psnr(crop_odd, crop_odd) == float("inf")
    noisy = np.clip(crop_odd.astype(int) + 5, 0, 255).astype(np.uint8)
    assert 30 < psnr(crop_odd, noisy) < 40
    assert 0.9 < ms_ssim(crop_odd, noisy) < 1.0


def test_bd_rate_matches_the_package_example():
    # The example from the bjontegaard package's README (pchip), and a shifted curve.
    ra = [9487.76, 4593.60, 2486.44, 1358.24]
    da = [40.037, 38.615, 36.845, 34.851]
    rt = [9787.80, 4469.00, 2451.52, 1356.24]
    dt = [40.121, 38.651, 36.970, 34.987]

    def res(r, d):
        return {"results": {"bpp": r, "psnr-rgb": d}}

    import bjontegaard as bd

    ref = bd.bd_rate(ra, da, rt, dt, method="pchip")
    assert bd_rate(res(ra, da), res(rt, dt))["bd_rate"] == pytest.approx(ref)
    half = bd_rate(res(ra, da), res([r / 2 for r in ra], da))
    assert half["bd_rate"] == pytest.approx(-50.0, abs=1e-6) and half["overlap"] == 1.0
