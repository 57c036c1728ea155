"""The MLIC-style multi-reference codec, with a tiny configuration (seconds on a CPU)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from neurocodec.codecs.container import Container
from neurocodec.codecs.image import latent_codecs
from neurocodec.codecs.image.codec import ImageCodec, load_weights, save_weights
from neurocodec.codecs.image.mlic import MLICConfig, MLICModel
from neurocodec.codecs.registry import load_codec, weights_digest
from neurocodec.entropy import rans
from neurocodec.errors import BitstreamError
from neurocodec.transforms.attention import LinearAttention

from .conftest import DATA

TINY = MLICConfig(N=16, M=20, slices=4, hidden=16, heads=4, lmbdas=(0.01, 0.05))


def tiny_model(seed: int = 0) -> MLICModel:
    torch.manual_seed(seed)
    m = MLICModel(TINY).eval()
    m.build_z_tables()
    return m


@pytest.fixture(scope="module")
def crop() -> torch.Tensor:
    """The 128x96 Kodak crop as float ``[1, 3, 96, 128]``."""
    img = np.asarray(Image.open(DATA / "kodim19_crop128x96.png").convert("RGB")).copy()
    return torch.tensor(img).permute(2, 0, 1)[None].float() / 255.0


def test_train_forward_shapes_and_finite_rate():
    torch.manual_seed(0)
    m = MLICModel(TINY).train()
    x = torch.rand(2, 3, 64, 128)
    out = m(x, torch.tensor([0, 1]))
    assert out["x_hat"].shape == x.shape
    assert out["likelihoods"]["y"].shape == (2, 20, 4, 8)
    assert out["likelihoods"]["z"].shape == (2, 16, 1, 2)
    bits = sum(-torch.log2(v).sum() for v in out["likelihoods"].values())
    assert torch.isfinite(bits) and bits > 0
    assert torch.isfinite(m.aux_loss())


@pytest.mark.parametrize("q", [0, 1])
def test_decompress_equals_eval_forward(q, crop):
    m = tiny_model()
    x = crop[..., :64, :128]
    streams, zshape = m.compress(x, q)
    assert len(streams) == 1 + 2 * TINY.slices
    dec = m.decompress(streams, zshape, q, (64, 128))
    out = m(x, torch.tensor([q]))
    assert torch.equal(dec, out["x_hat"].clamp(0, 1))
    lik = m.coded_likelihoods(x, q)
    assert all(torch.equal(lik[k], out["likelihoods"][k]) for k in ("y", "z"))
    # The likelihoods of the exact pass predict the real stream, up to the per-stream costs
    # (a 16-byte header with one lane, and a 4-byte flush).
    est = sum(-torch.log2(v).sum() for v in out["likelihoods"].values()).item()
    real = 8 * sum(len(s) for s in streams)
    assert est * 0.95 < real < est * 1.05 + len(streams) * 20 * 8


def test_same_bytes_and_pixels_on_1_and_2_threads():
    codec = ImageCodec(tiny_model(), "tiny-mlic", "0" * 16)
    img = np.asarray(Image.open(DATA / "kodim19_crop75x53.png").convert("RGB")).copy()
    n = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            data = codec.encode(img, 1)
            results.append((data, codec.decode(Container.from_bytes(data))))
    finally:
        torch.set_num_threads(n)
    (a_bytes, a), (b_bytes, b) = results
    assert a_bytes == b_bytes
    assert a.shape == img.shape and a.dtype == np.uint8 and np.array_equal(a, b)


def test_decoding_is_two_parallel_passes_per_slice(monkeypatch, crop):
    m = tiny_model()
    streams, zshape = m.compress(crop[..., :64, :64], 0)
    calls = {"rans": 0, "step": 0, "slices": 0}

    def counting(fn, key):
        def wrapped(*a, **k):
            calls[key] += 1
            return fn(*a, **k)
        return wrapped

    # Patched on the module and the classes, so the float64 copies the codec makes count too.
    monkeypatch.setattr(rans, "decode_batch", counting(rans.decode_batch, "rans"))
    monkeypatch.setattr(latent_codecs.CheckerboardContext, "forward",
                        counting(latent_codecs.CheckerboardContext.forward, "step"))
    monkeypatch.setattr(latent_codecs.ChannelSlices, "passes",
                        counting(latent_codecs.ChannelSlices.passes, "slices"))
    m.decompress(streams, zshape, 0, (64, 64))
    assert calls == {"rans": 1 + 2 * TINY.slices, "step": 2 * TINY.slices, "slices": 1}


def test_training_steps_reduce_loss_and_reach_every_parameter(crop):
    torch.manual_seed(0)
    m = MLICModel(TINY).train()
    x = crop[..., :64, :64]
    q = torch.tensor([1])
    opt = torch.optim.Adam([p for n, p in m.named_parameters() if not n.endswith("quantiles")],
                           lr=1e-3)
    losses = []
    for step in range(5):
        out = m(x, q)
        bpp = sum(-torch.log2(v).sum() for v in out["likelihoods"].values()) / x[0, 0].numel()
        loss = TINY.lmbdas[1] * 255**2 * (out["x_hat"] - x).pow(2).mean() + bpp
        opt.zero_grad()
        (loss + m.aux_loss()).backward()
        if step == 0:
            for name, p in m.named_parameters():
                assert p.grad is not None, name
                assert torch.isfinite(p.grad).all(), name
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_wrong_stream_count_is_a_bitstream_error(crop):
    m = tiny_model()
    streams, zshape = m.compress(crop[..., :64, :64], 0)
    with pytest.raises(BitstreamError, match="streams"):
        m.decompress(streams[:-1], zshape, 0, (64, 64))


def test_saved_model_round_trips_through_the_registry(tmp_path, monkeypatch):
    m = tiny_model()
    save_weights(m, tmp_path / "mlic-tiny.safetensors")
    (tmp_path / "mlic-tiny.json").write_text(json.dumps({
        "name": "mlic-tiny", "codec": "mlic", "medium": "image", "qualities": [0, 1],
        "params": sum(p.numel() for p in m.parameters()), "training_command": "none (random)",
        "training_hours": 0.0, "data": "none", "config": TINY.to_dict()}))
    weights_digest.cache_clear()
    monkeypatch.setenv("NEUROCODEC_WEIGHTS", str(tmp_path))
    loaded = load_weights(tmp_path / "mlic-tiny.safetensors")
    assert isinstance(loaded, MLICModel) and loaded.cfg == TINY
    codec = load_codec("mlic-tiny")
    img = np.asarray(Image.open(DATA / "kodim19_crop75x53.png").convert("RGB")).copy()
    c = Container.from_bytes(codec.encode(img, 0))
    assert c.codec == "mlic" and len(c.sections) == 1 + 2 * TINY.slices
    out = codec.decode(c)
    # fp16 weights: the reloaded model decodes what the reloaded model encodes, exactly.
    x = torch.tensor(img).permute(2, 0, 1)[None].float() / 255.0
    ref = codec.model(codec.model._pad(x)[0], torch.tensor([0]))["x_hat"].clamp(0, 1)
    ref = (ref[0, :, :53, :75].permute(1, 2, 0) * 255.0).round().to(torch.uint8).numpy()
    assert np.array_equal(out, ref)


def test_linear_attention_ignores_masked_keys():
    torch.manual_seed(0)
    att = LinearAttention(6, 3, dim=8, heads=2).double()
    q_in, kv = torch.randn(1, 6, 5, 7).double(), torch.randn(1, 3, 5, 7).double()
    mask = latent_codecs.checkerboard(5, 7)
    changed = torch.where(mask, kv, torch.randn_like(kv))
    torch.testing.assert_close(att(q_in, kv, mask), att(q_in, changed, mask), rtol=0, atol=1e-12)
    assert not torch.allclose(att(q_in, kv), att(q_in, changed))


def test_weights_without_arch_load_as_hyperprior():
    from neurocodec.codecs.image.hyperprior import ScaleHyperprior
    from neurocodec.codecs.registry import WEIGHTS_DIR

    assert isinstance(load_weights(WEIGHTS_DIR / "hyperprior-vr.safetensors"), ScaleHyperprior)


def test_dct_transform_variant_round_trips_exactly(crop):
    torch.manual_seed(0)
    cfg = MLICConfig(N=16, M=192, slices=4, hidden=16, heads=4, lmbdas=(0.01, 0.05),
                     transform="dct")
    m = MLICModel(cfg).eval()
    m.build_z_tables()
    assert m.PAD == 32
    x = crop[..., :53, :75]  # odd size: padded to 32, cropped back
    streams, zshape = m.compress(x, 1)
    dec = m.decompress(streams, zshape, 1, (53, 75))
    assert dec.shape == (1, 3, 53, 75)
    xp = torch.nn.functional.pad(x, (0, 96 - 75, 0, 64 - 53), mode="replicate")
    assert torch.equal(dec, m(xp, torch.tensor([1]))["x_hat"].clamp(0, 1)[..., :53, :75])
    with pytest.raises(ValueError, match="M=192"):
        MLICModel(MLICConfig(M=160, transform="dct"))
