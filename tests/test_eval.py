"""Metrics, colour conversions, BD-rate, quality targeting and the classical baselines."""

import math

import numpy as np
import pytest

from neurocodec.errors import BaselineUnavailable, InputError
from neurocodec.eval import colour
from neurocodec.eval.baselines import BASELINES, get_baseline
from neurocodec.eval.bdrate import bd_rate
from neurocodec.eval.metrics import image_metrics, psnr, psnr_ycbcr, psnr_yuv
from neurocodec.eval.targeting import find_knob

from .conftest import DATA


def _available(names):
    out = []
    for n in sorted(names):
        try:
            get_baseline(n)
            out.append(n)
        except BaselineUnavailable:
            pass
    return out


@pytest.mark.parametrize("name", _available(BASELINES))
def test_baseline_round_trip_monotone(name, crop_odd):
    b = get_baseline(name)
    qs = sorted(b.qualities, reverse=not b.knob.rate_increases)  # worst … best
    out = []
    for q in (qs[1], qs[-2]):
        data = b.encode(crop_odd, q)
        rec = b.decode(data, crop_odd.shape[:2])
        assert rec.shape == crop_odd.shape and rec.dtype == np.uint8
        out.append((len(data), psnr(crop_odd, rec)))
    # more bits, better picture: the knob really drives the real codec
    assert out[1][0] > out[0][0] and out[1][1] > out[0][1]
    # and at the high end the picture is close: catches colour/range/siting mistakes
    assert out[1][1] > 34


def test_missing_reference_binaries_are_reported_not_raised(tmp_path, monkeypatch):
    monkeypatch.delenv("NEUROCODEC_VTM_DIR", raising=False)
    with pytest.raises(BaselineUnavailable, match="no build given"):
        get_baseline("vtm")
    monkeypatch.setenv("NEUROCODEC_HM_DIR", str(tmp_path))
    with pytest.raises(BaselineUnavailable, match="no encoder, decoder"):
        get_baseline("hm")
    with pytest.raises(InputError, match="unknown baseline"):
        get_baseline("nonesuch")


def test_colour_round_trips():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (37, 51, 3), dtype=np.uint8)
    back = colour.planes_to_rgb(colour.rgb_to_planes(img, 10, "444"), 10, img.shape[:2])
    assert np.abs(back.astype(int) - img).max() <= 1  # 10-bit Y'CbCr holds 8-bit RGB
    back8 = colour.planes_to_rgb(colour.rgb_to_planes(img, 8, "444"), 8, img.shape[:2])
    assert psnr(img, back8) > 45
    # 4:2:0 of a smooth image: centre-sited down/up-sampling loses almost nothing
    yy, xx = np.mgrid[0:37, 0:51]
    smooth = np.stack([yy * 5, xx * 4, 128 + 0 * xx], -1).astype(np.uint8)
    back420 = colour.planes_to_rgb(colour.rgb_to_planes(smooth, 10, "420"), 10, (37, 51))
    assert psnr(smooth, back420) > 40
    # a constant plane survives down- and up-sampling exactly
    c = np.full((7, 9), 0.25)
    assert np.allclose(colour.upsample_420(colour.downsample_420(c), (7, 9)), 0.25)


def test_metrics(crop_odd):
    noisy = np.clip(crop_odd.astype(int) + 5, 0, 255).astype(np.uint8)
    m = image_metrics(crop_odd, noisy)
    assert set(m) == {"psnr-rgb", "psnr-y", "psnr-yuv", "ms-ssim-rgb"}
    assert 30 < m["psnr-rgb"] < 40 and 0.9 < m["ms-ssim-rgb"] < 1.0
    y, cb, cr = psnr_ycbcr(crop_odd, noisy)
    assert m["psnr-yuv"] == pytest.approx((6 * y + cb + cr) / 8)
    # a grey shift changes luma only: chroma PSNR is far higher than luma's
    assert cb > y + 10 and cr > y + 10
    assert psnr_yuv(crop_odd, crop_odd) == math.inf


def _res(r, d):
    return {"results": {"bpp": r, "psnr-rgb": d}}


# The example in the bjontegaard package's README (libx265 presets).
RA, DA = [9487.76, 4593.60, 2486.44, 1358.24], [40.037, 38.615, 36.845, 34.851]
RT, DT = [9787.80, 4469.00, 2451.52, 1356.24], [40.121, 38.651, 36.970, 34.987]


@pytest.mark.parametrize("method", ["pchip", "cubic", "akima"])
def test_bd_rate_matches_the_package_example(method):
    import bjontegaard as bd

    d = bd_rate(_res(RA, DA), _res(RT, DT), method=method)
    assert d["bd_rate"] == pytest.approx(bd.bd_rate(RA, DA, RT, DT, method=method))
    assert d["bd_psnr"] == pytest.approx(bd.bd_psnr(RA, DA, RT, DT, method=method))
    assert d["warning"] is None and d["overlap"] > 0.9


def test_bd_rate_against_an_independent_integration():
    from scipy.integrate import quad
    from scipy.interpolate import PchipInterpolator

    # JVET's definition: integrate log10(rate) as a pchip function of PSNR over the overlap
    fa = PchipInterpolator(DA[::-1], np.log10(RA[::-1]))
    ft = PchipInterpolator(DT[::-1], np.log10(RT[::-1]))
    lo, hi = max(min(DA), min(DT)), min(max(DA), max(DT))
    diff = (quad(ft, lo, hi)[0] - quad(fa, lo, hi)[0]) / (hi - lo)
    expected = (10**diff - 1) * 100
    assert bd_rate(_res(RA, DA), _res(RT, DT))["bd_rate"] == pytest.approx(expected, abs=0.02)
    half = bd_rate(_res(RA, DA), _res([r / 2 for r in RA], DA))
    assert half["bd_rate"] == pytest.approx(-50.0, abs=1e-6) and half["overlap"] == 1.0


def test_bd_rate_flags_missing_overlap():
    far = bd_rate(_res(RA, DA), _res(RT, [d + 20 for d in DT]))
    assert math.isnan(far["bd_rate"]) and "do not overlap" in far["warning"]
    narrow = bd_rate(_res(RA, DA), _res(RT, [d + 4 for d in DT]))
    assert narrow["warning"] and "narrow" in narrow["warning"]
    with pytest.raises(ValueError):
        bd_rate(_res(RA, DA), _res(RT, DT), method="linear")


@pytest.mark.parametrize("name,target", [("jpeg-420", 2.0), ("jpegxl", 1.5), ("vvc", 1.0)])
def test_find_knob_hits_target(name, crop_odd, target):
    b = get_baseline(name)
    knob, data = find_knob(b, crop_odd, target)
    got = 8 * len(data) / (crop_odd.shape[0] * crop_odd.shape[1])
    assert abs(got - target) / target < 0.15, (knob, got)
    # the bitstream returned is the one the knob makes
    assert b.decode(data, crop_odd.shape[:2]).shape == crop_odd.shape


def test_video_baselines_round_trip():
    from neurocodec.datasets.video import read_clip
    from neurocodec.eval.video_baselines import VIDEO_BASELINES, get_video_baseline

    clip = read_clip(DATA / "video" / "foreman_crop_64x48_4f.yuv", frames=3, size=(47, 63))
    assert clip.shape == (3, 47, 63, 3) and clip.dtype == np.uint8
    for name in VIDEO_BASELINES:
        b = get_video_baseline(name)
        lo, hi = max(b.qualities), min(b.qualities)  # QP-like: lower is better
        rates, quals = [], []
        for q in (lo, hi):
            data = b.encode(clip, q)
            rec = b.decode(data, clip.shape[:3])
            assert rec.shape == clip.shape, name
            rates.append(len(data))
            quals.append(psnr(clip, rec))
        assert rates[1] > rates[0] and quals[1] > quals[0] and quals[1] > 30, (name, rates, quals)


def test_video_reader_errors(tmp_path):
    from neurocodec.datasets.video import list_clips, read_clip

    bad = tmp_path / "noise.yuv"
    bad.write_bytes(b"\0" * 100)
    with pytest.raises(InputError, match="WxH"):
        read_clip(bad)
    with pytest.raises(InputError, match="no video clips"):
        list_clips(tmp_path / "..")
    with pytest.raises(InputError, match="smaller"):
        read_clip(DATA / "video" / "foreman_crop_64x48_4f.yuv", size=(100, 100))


def test_bd_rate_leaves_out_dominated_points():
    """A curve whose quality dips at a higher rate (tiny images, coarse knobs) still gets a
    BD-rate, from its Pareto front, with a warning instead of an interpolator crash."""
    bumpy = _res([*RT, RT[-1] * 1.1], [*DT, DT[-1] - 1.0])
    d = bd_rate(_res(RA, DA), bumpy)
    assert d["bd_rate"] == pytest.approx(bd_rate(_res(RA, DA), _res(RT, DT))["bd_rate"])
    assert "dominated" in d["warning"]
