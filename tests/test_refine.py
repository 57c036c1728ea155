"""Encoder-side latent refinement: files decode unchanged, the RD cost never gets worse."""

import numpy as np
import pytest
import torch

from neurocodec.cli import main
from neurocodec.codecs.container import Container
from neurocodec.codecs.image.base import VariableRateImageModel
from neurocodec.codecs.image.codec import ImageCodec
from neurocodec.codecs.image.hyperprior import HyperpriorConfig, ScaleHyperprior
from neurocodec.codecs.image.mlic import MLICModel
from neurocodec.codecs.image.refine import RefineConfig, refine_latents, sga_relaxation
from neurocodec.codecs.registry import load_codec
from neurocodec.errors import InputError, ModelError
from neurocodec.eval.metrics import bpp
from tests.conftest import DATA
from tests.test_mlic import TINY


@pytest.fixture(autouse=True)
def one_thread():
    """Small tensors on shared cores: one torch thread is several times faster than two."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_hyperprior(seed: int = 0) -> ScaleHyperprior:
    torch.manual_seed(seed)
    m = ScaleHyperprior(HyperpriorConfig(N=8, M=12, lmbdas=(0.01, 0.05))).eval()
    m.build_z_tables()
    return m


def tiny_mlic(seed: int = 0) -> MLICModel:
    torch.manual_seed(seed)
    m = MLICModel(TINY).eval()
    m.build_z_tables()
    return m


def to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.tensor(img).permute(2, 0, 1)[None].float() / 255.0


def rd_cost(img: np.ndarray, data: bytes, codec: ImageCodec, lmbda: float) -> float:
    """Real bytes' bpp + λ·255²·MSE of the decoded 8-bit image."""
    rec = codec.decode(Container.from_bytes(data))
    mse = np.mean((rec.astype(np.float64) - img.astype(np.float64)) ** 2)
    return bpp(len(data), img.shape) + lmbda * mse


def test_sga_relaxation_brackets_and_anneals():
    g = torch.Generator().manual_seed(0)
    v, c = 4 * torch.randn(10_000), torch.randn(10_000)
    hot = sga_relaxation(0.5, g)(v, c)
    cold = sga_relaxation(1e-3, g)(v, c)
    r, tol = v - c, 1e-5  # tol: (c + k) - c is k only up to float rounding
    assert torch.all(hot - c >= torch.floor(r) - tol)
    assert torch.all(hot - c <= torch.floor(r) + 1 + tol)
    # Near zero temperature the choice is (almost always) plain rounding.
    assert (cold - c - torch.round(r)).abs().lt(1e-3).float().mean() > 0.99


def test_config_is_checked():
    with pytest.raises(InputError):
        RefineConfig(steps=-1)
    with pytest.raises(InputError):
        RefineConfig(steps=3, lr=0.0)
    cfg = RefineConfig(steps=5, tau_start=0.5, tau_end=0.05)
    assert cfg.tau(0) == 0.5 and cfg.tau(4) == pytest.approx(0.05)


@pytest.mark.parametrize("make", [tiny_hyperprior, tiny_mlic], ids=["hyperprior", "mlic"])
def test_refined_latents_decode_as_coded(make, crop_odd):
    """The unchanged decoder reconstructs exactly the exact quantized pass of the refined
    latents, and the file round-trips through the container."""
    m = make()
    x = to_tensor(crop_odd)
    r = refine_latents(m, x, 1, RefineConfig(steps=4, lr=0.05))
    assert r.cost_after <= r.cost_before or not r.refined
    streams, zs = m.compress_latents(r.y, r.z, 1)
    assert (streams, zs) == (r.streams, r.z_shape)
    h, w = crop_odd.shape[:2]
    dec = m.decompress(streams, zs, 1, (h, w))
    ref = m._eval_latents(r.y, r.z, 1)["x_hat"][..., :h, :w].clamp(0, 1)
    assert torch.equal(dec, ref)
    codec = ImageCodec(m, "tiny", "0" * 16)
    data = codec.encode(crop_odd, 1, refine=RefineConfig(steps=4, lr=0.05))
    img = codec.decode(Container.from_bytes(data))
    expect = (dec[0].permute(1, 2, 0) * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()
    assert np.array_equal(img, expect)


def test_unrefined_path_unchanged(crop_odd):
    m = tiny_hyperprior()
    codec = ImageCodec(m, "tiny", "0" * 16)
    plain = codec.encode(crop_odd, 0)
    assert codec.encode(crop_odd, 0, refine=RefineConfig(steps=0)) == plain
    x = to_tensor(crop_odd)
    y, z = m._analysis_latents(m._pad(x)[0], 0)
    assert m.compress_latents(y, z, 0) == m.compress(x, 0)


def test_rejected_refinement_codes_the_unrefined_latents(crop_odd):
    """A step so large that it ruins the latents is thrown away: the same file as without."""
    m = tiny_hyperprior()
    codec = ImageCodec(m, "tiny", "0" * 16)
    r = refine_latents(m, to_tensor(crop_odd), 0, RefineConfig(steps=2, lr=50.0))
    assert not r.refined and r.cost_after >= r.cost_before
    data = codec.encode(crop_odd, 0, refine=RefineConfig(steps=2, lr=50.0))
    assert data == codec.encode(crop_odd, 0)


def test_unsupported_architecture_is_a_model_error(crop_odd):
    class Frozen(ScaleHyperprior):
        relaxed_pass = VariableRateImageModel.relaxed_pass  # as a new arch without one

    torch.manual_seed(0)
    m = Frozen(HyperpriorConfig(N=8, M=12, lmbdas=(0.01,))).eval()
    with pytest.raises(ModelError, match="refinement"):
        refine_latents(m, to_tensor(crop_odd), 0, RefineConfig(steps=1))


@pytest.mark.parametrize("q", [0, 5])
def test_shipped_model_refinement_lowers_real_rd_cost(q):
    """Shipped model, real photo crop: 20 steps lower the real cost (file bytes + MSE of the
    decoded image); the keep-if-better rule alone makes it never higher."""
    from PIL import Image

    img = np.asarray(Image.open(DATA / "kodim19_crop128x96.png").convert("RGB"))
    codec = load_codec("hyperprior-vr")
    lmbda = codec.model.cfg.lmbdas[q]
    plain = rd_cost(img, codec.encode(img, q), codec, lmbda)
    refined = rd_cost(img, codec.encode(img, q, refine=RefineConfig(steps=20)), codec, lmbda)
    assert refined < plain * 0.995  # measured: 1.3-3% lower at 20-30 steps


def test_cli_refine(tiny_env, tmp_path, capsys):
    src = DATA / "kodim19_crop75x53.png"
    rc = main(["encode", str(src), "-o", str(tmp_path / "a.ncb"), "--codec", "tiny-test",
               "-q", "1", "--refine", "5"])
    assert rc == 0 and "bpp" in capsys.readouterr().out
    assert main(["decode", str(tmp_path / "a.ncb"), "-o", str(tmp_path / "a.png")]) == 0
    capsys.readouterr()
    for bad in (["--refine", "-1"], ["--refine", "3", "--refine-lr", "0"], ["--refine-lr", "1"]):
        rc = main(["encode", str(src), "-o", str(tmp_path / "b.ncb"), "--codec", "tiny-test",
                   *bad])
        err = capsys.readouterr().err
        assert rc == 1 and err.startswith("neurocodec: error:") and err.count("\n") == 1
    assert not (tmp_path / "b.ncb").exists()
