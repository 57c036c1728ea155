"""HNeRV/NeRV: sizing, fitting through the shared loop, real files, exact decoding, hostile
files. Clips are tiny and fits short: these test the machinery, not the quality."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from neurocodec.codecs.container import Container
from neurocodec.codecs.limits import DecodeLimits
from neurocodec.codecs.video.codec import INRCodec, parse_params, unpack_symbols
from neurocodec.codecs.video.fit import FitConfig, fit
from neurocodec.codecs.video.models import INRConfig, VideoINR, build, pick_strides
from neurocodec.datasets.video import read_clip
from neurocodec.errors import BitstreamError, InputError

from .conftest import DATA

FIT = {"epochs": 3, "progress": "off", "threads": 1}


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return read_clip(DATA / "video" / "foreman_crop_64x48_4f.yuv")  # [4, 48, 64, 3]


@pytest.fixture(scope="module", params=["hnerv", "nerv"])
def encoded(request, clip) -> tuple[INRCodec, bytes]:
    c = INRCodec(request.param)
    return c, c.encode(clip, 0, params=8000, **FIT)


def test_strides_pad_little_and_never_crop():
    for h, w in [(180, 320), (360, 640), (144, 176), (64, 64), (1080, 1920), (47, 63)]:
        s = pick_strides(h, w)
        total = int(np.prod(s))
        hp, wp = -(-h // total) * total, -(-w // total) * total
        assert hp >= h and wp >= w and hp * wp <= 1.1 * h * w, (h, w, s)
    with pytest.raises(InputError):
        pick_strides(3, 3)


@pytest.mark.parametrize("kind", ["hnerv", "nerv"])
def test_budget_is_met(kind):
    for p in (30_000, 120_000, 500_000):
        cfg = INRConfig(kind, 20, 180, 320, p)
        m = build(cfg)
        assert 0.8 * p <= m.stored_count() <= p
        with torch.no_grad():
            y = m(torch.rand(2, 3, 180, 320), torch.rand(2))
        assert y.shape == (2, 3, 180, 320) and 0 <= float(y.min()) and float(y.max()) <= 1
    assert "encoder" not in "".join(VideoINR(cfg, encoder=False).decoder_parameters())


def test_params_parsing():
    assert parse_params("0.3M") == 300_000 and parse_params("250k") == 250_000
    for bad in ("lots", "0", "1e12", "nan"):
        with pytest.raises(InputError):
            parse_params(bad)


def test_round_trip_is_the_quantized_model(encoded, clip):
    codec, data = encoded
    c = Container.from_bytes(data)
    assert c.medium == "video" and c.shape == [4, 48, 64, 3]
    rec = codec.decode(c)
    assert rec.shape == clip.shape and rec.dtype == np.uint8
    # The file records the encoder's own decode of its quantized model: equal, bit for bit.
    import zlib

    assert zlib.crc32(rec.tobytes()) == c.meta["frames_crc32"]
    mse = np.mean((rec.astype(float) - clip) ** 2)
    assert abs(10 * np.log10(255 ** 2 / mse) - c.meta["psnr_rgb"]) < 1e-3
    n = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = codec.decode(c)
    finally:
        torch.set_num_threads(n)
    assert np.array_equal(one, rec)


def test_file_codes_every_quantized_value(encoded):
    codec, data = encoded
    c = Container.from_bytes(data)
    inr = codec.check(c, DecodeLimits())
    with torch.device("meta"):
        model = VideoINR(inr, encoder=False)
    tensors, embed, _ = unpack_symbols(model, c.sections)
    assert sum(t.size for t in tensors) == sum(
        p.numel() for p in model.decoder_parameters().values())
    assert all(np.abs(t).max() <= 127 for t in tensors)
    assert (embed is None) == (inr.kind == "nerv")
    if embed is not None:
        assert embed.shape[0] == 4 and np.abs(embed).max() <= 32


def test_truncated_and_corrupted_files(encoded):
    codec, data = encoded
    for bad in (data[:-1], data[: len(data) // 2], data[:-7] + bytes(b ^ 0xFF for b in data[-7:])):
        with pytest.raises(BitstreamError):
            codec.decode(Container.from_bytes(bad))
    # Crafted sections with valid checksums: every size is checked against the architecture.
    for i, change in ((1, lambda b: b[:-2]), (0, lambda b: b[:-2]), (2, lambda b: b"\x02" * len(b)),
                      (2, lambda b: b + b"\x00"), (1, lambda b: b[:3])):
        c = Container.from_bytes(data)
        c.sections[i] = change(c.sections[i])
        with pytest.raises(BitstreamError):
            codec.decode(Container.from_bytes(c.to_bytes()))


@pytest.mark.parametrize("field,value", [
    ("strides", [5, 5, 5, 5, 5, 5]), ("strides", [1, 2, 2]), ("width", 100000),
    ("width", 3.0), ("kind", "other"), ("frames", 5), ("embed_dim", True), ("reduce", "x")])
def test_lying_headers_are_refused(encoded, field, value):
    codec, data = encoded
    c = Container.from_bytes(data)
    c.meta["inr"][field] = value
    with pytest.raises(BitstreamError):
        codec.decode(Container.from_bytes(c.to_bytes()))


def test_limits_checked_before_allocation(encoded):
    codec, data = encoded
    c = Container.from_bytes(data)
    with pytest.raises(BitstreamError, match="--max-frames"):
        codec.decode(c, DecodeLimits(max_frames=3))
    with pytest.raises(BitstreamError, match="--max-pixels"):
        codec.decode(c, DecodeLimits(max_pixels=64 * 47))


def test_bad_clips_and_options(clip):
    c = INRCodec("hnerv")
    with pytest.raises(InputError):
        c.encode(clip[..., 0], 0, **FIT)
    with pytest.raises(InputError):
        c.encode(clip[:0], 0, **FIT)
    with pytest.raises(InputError):
        c.encode(clip, 0, refine=3, **FIT)
    with pytest.raises(InputError):
        c.encode(clip, 0, params=8000, epochs=0, progress="off")
    with pytest.raises(InputError):
        c.encode(clip, 9, **FIT)


def test_fit_resumes_exactly(clip, tmp_path):
    inr = lambda: INRConfig("hnerv", 4, 48, 64, 8000)  # noqa: E731
    whole = fit(clip, inr(), FitConfig(**FIT), tmp_path / "a")
    fit(clip, inr(), FitConfig(**FIT, stop_at=3), tmp_path / "b")
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["step"] == 3
    resumed = fit(clip, inr(), FitConfig(**FIT), tmp_path / "b")
    for (n, p), q in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(p, q), n
    log = (tmp_path / "b" / "log.csv").read_text().splitlines()
    assert log[0].startswith("step,") and json.loads((tmp_path / "b" / "fit.json").read_text())
    with pytest.raises(InputError):  # another budget in the same run folder
        fit(clip, INRConfig("hnerv", 4, 48, 64, 20000), FitConfig(**FIT), tmp_path / "b")


def test_pruning_zeroes_and_keeps_zero(clip):
    m = fit(clip, INRConfig("nerv", 4, 48, 64, 8000), FitConfig(**FIT, prune=0.5, prune_at=0.3))
    w = torch.cat([p.detach().ravel() for p in m.decoder_parameters().values() if p.dim() >= 2])
    assert 0.45 <= float((w == 0).float().mean()) <= 0.6
