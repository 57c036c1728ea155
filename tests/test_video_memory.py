"""Bounded-memory fitting and decoding of large frames: checkpointed, banded and split passes
give the gradients of the plain pass; the decoder's pass size follows the frame size only."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from neurocodec.codecs.video import codec as vcodec
from neurocodec.codecs.video import fit as vfit
from neurocodec.codecs.video import models
from neurocodec.codecs.video.models import INRConfig, build


def _grads(m, x, t, bits=0):
    m.zero_grad()
    with vfit.fake_quantized(m, bits):
        y = m(x, t, bits)
        ((y - x) ** 2).mean().backward()
    return y.detach(), {n: p.grad.clone() for n, p in m.named_parameters()}


@pytest.mark.parametrize("kind,bits", [("hnerv", 0), ("hnerv", 6), ("nerv", 6)])
def test_checkpointed_bands_give_the_plain_gradients(monkeypatch, kind, bits):
    torch.manual_seed(0)
    m = build(INRConfig(kind, 4, 45, 70, 20_000)).train()
    x, t = torch.rand(2, 3, 45, 70), torch.tensor([0.0, 1.0])
    y0, g0 = _grads(m, x, t, bits)
    ck = copy.deepcopy(m)
    ck.checkpointed = True
    monkeypatch.setattr(models, "BAND_PIXELS", 700)  # several bands of a few rows each
    y1, g1 = _grads(ck, x, t, bits)
    torch.testing.assert_close(y1, y0, rtol=1e-5, atol=1e-6)
    assert g0.keys() == g1.keys()
    for n in g0:
        torch.testing.assert_close(g1[n], g0[n], rtol=1e-4, atol=1e-6, msg=n)
    # the original parameters are back, and still the ones the optimizer holds
    assert not any("parametrizations" in n for n, _ in ck.named_parameters())


def test_qat_recompute_sees_the_quantized_weights(monkeypatch):
    """A checkpointed backward pass outside the quantized context would use the raw weights:
    its gradients must differ from the quantized pass's (so the test above can fail)."""
    torch.manual_seed(1)
    m = build(INRConfig("hnerv", 4, 45, 70, 20_000)).train()
    x, t = torch.rand(2, 3, 45, 70), torch.zeros(2)
    _, g_q = _grads(m, x, t, 3)
    _, g_raw = _grads(m, x, t, 0)
    assert any(not torch.allclose(g_q[n], g_raw[n], rtol=1e-3) for n in g_q)


def test_split_passes_fit_as_one_batch(monkeypatch):
    rng = np.random.default_rng(0)
    clip = rng.integers(0, 256, (4, 36, 52, 3), dtype=np.uint8)
    # fp32: the identity is exact arithmetic up to summation order; bf16 rounds each pass
    cfg = {"epochs": 2, "batch": 2, "progress": "off", "threads": 1, "qat_fraction": 0.5,
           "precision": "fp32"}
    inr = lambda: INRConfig("hnerv", 4, 36, 52, 15_000)  # noqa: E731
    whole = vfit.fit(clip, inr(), vfit.FitConfig(**cfg))
    monkeypatch.setattr(vfit, "PASS_PIXELS", 1)  # one frame per pass
    monkeypatch.setattr(models, "LARGE_PIXELS", 1)
    split = vfit.fit(clip, inr(), vfit.FitConfig(**cfg))
    assert split.checkpointed and not whole.checkpointed
    for (n, a), (_, b) in zip(whole.state_dict().items(), split.state_dict().items()):
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-5, msg=n)


def test_decode_passes_shrink_with_the_frame():
    small, large = INRConfig("hnerv", 9, 360, 640, 1), INRConfig("hnerv", 9, 720, 1280, 1)
    for c in (small, large):
        c.strides = models.pick_strides(c.height, c.width_px)
    assert vcodec.decode_batch(small) == vcodec.DECODE_BATCH
    assert vcodec.decode_batch(large) == 1


def test_decoder_output_is_the_same_whatever_the_pass_size():
    torch.manual_seed(0)
    m = build(INRConfig("hnerv", 5, 40, 56, 10_000)).eval()
    code = torch.randn(5, m.cfg.embed_dim, *m.cfg.grid)
    a, b = (np.concatenate([f for _, f in vcodec.decoded_passes(m, code, n)]) for n in (1, 4))
    assert a.shape == (5, 40, 56, 3) and a.dtype == np.uint8
    assert all(f.flags.c_contiguous for _, f in vcodec.decoded_passes(m, code, 2))  # for crc32
    assert np.abs(a.astype(int) - b).max() <= 1


def test_large_frames_decode_in_bands_with_the_same_values(monkeypatch):
    torch.manual_seed(0)
    m = build(INRConfig("hnerv", 3, 45, 70, 20_000)).eval()
    code = torch.randn(3, m.cfg.embed_dim, *m.cfg.grid)
    with torch.no_grad():
        whole = m.decode(code)
    monkeypatch.setattr(models, "LARGE_PIXELS", 1)
    monkeypatch.setattr(models, "BAND_PIXELS", 700)
    with torch.no_grad():
        banded = m.decode(code)
    torch.testing.assert_close(banded, whole, rtol=1e-5, atol=1e-6)


def test_encoder_checksum_is_the_decoders_at_any_pass_size(monkeypatch):
    """The encoder's checksum and PSNR come a pass at a time; the decoder reproduces them."""
    import warnings

    from neurocodec.codecs.container import Container

    rng = np.random.default_rng(1)
    clip = rng.integers(0, 256, (5, 40, 56, 3), dtype=np.uint8)
    monkeypatch.setattr(vcodec, "DECODE_PIXELS", 1)  # one frame per pass
    c = vcodec.INRCodec("hnerv")
    data = c.encode(clip, 0, params=6000, epochs=1, progress="off", threads=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a checksum mismatch warns
        rec = c.decode(Container.from_bytes(data))
    mse = np.mean((rec.astype(np.float64) - clip) ** 2)
    psnr = Container.from_bytes(data).meta["psnr_rgb"]
    assert abs(psnr - 10 * np.log10(255.0 ** 2 / mse)) < 1e-3
