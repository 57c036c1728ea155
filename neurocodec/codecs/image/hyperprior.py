"""Variable-rate mean-scale hyperprior (Minnen et al. 2018) with gain units (Cui et al. 2021).

One network covers ``len(lmbdas)`` rate points: quality ``q`` scales the latent ``y`` channel-wise
by ``gain[q]`` before quantization and by ``inv_gain[q]`` before synthesis (and likewise the
hyper-latent ``z``). Training samples ``q`` per image and weights its distortion by ``lmbdas[q]``.

Two transform families share the entropy model:

* ``transform="gdn"`` — Minnen's GDN stack. ``x [B,3,H,W] -> y [B,M,H/16,W/16] ->
  z [B,N,H/64,W/64]`` (H, W padded to 64). ``N=128, M=192``: ~7.0 M parameters.
* ``transform="dct"`` — a colour KLT + 8x8 DCT start with learned residual refinements and a
  post-filter (:mod:`neurocodec.transforms.blockdct`). ``y [B,192,H/8,W/8] ->
  z [B,N,H/32,W/32]`` (padded to 32). ``N=96``: 1.65 M parameters, ~25 kMAC/pixel for
  the synthesis side (refinement 2.9k, hyper-synthesis 15k, post-filter 3.2k, IDCT 0.6k).
  This is the shipped default: on two shared CPU cores the GDN stack did not get past
  ~21 dB in 1,700 steps, while this one starts at block-transform quality and learns from there.

Entropy coding goes through :mod:`neurocodec.entropy`: ``z`` with integer per-channel tables
stored beside the weights (so encoder and decoder never rebuild them from floats), ``y`` with
the Gaussian scale tables, indexed from scales computed in float64 on one thread.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurocodec.determinism import single_thread
from neurocodec.entropy import rans
from neurocodec.entropy.models import FactorizedPrior, GaussianConditional
from neurocodec.entropy.tables import CdfTables, default_scale_table, gaussian_tables, scale_indexes
from neurocodec.transforms.blockdct import COEFFS, DctAnalysis, DctSynthesis, jpeg_like_steps
from neurocodec.transforms.gdn import GDN

DEFAULT_LMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483)


@dataclass
class HyperpriorConfig:
    N: int = 128
    M: int = 192
    lmbdas: tuple[float, ...] = field(default_factory=lambda: DEFAULT_LMBDAS)
    # "gdn": Minnen et al.'s GDN stack (y at 1/16); "dct": colour KLT + 8x8 DCT start with
    # learned residual refinements and a post-filter (y at 1/8, M fixed to 192).
    transform: str = "gdn"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["lmbdas"] = list(self.lmbdas)
        return d


def _conv(cin: int, cout: int, k: int = 5, s: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=s, padding=k // 2)


def _deconv(cin: int, cout: int, k: int = 5, s: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, k, stride=s, padding=k // 2, output_padding=s - 1)


class ScaleHyperprior(nn.Module):
    """The network. ``forward`` is the training pass; ``compress``/``decompress`` code real bits."""

    scale_bound = 0.11

    def __init__(self, cfg: HyperpriorConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or HyperpriorConfig()
        N, M, Q = cfg.N, cfg.M, len(cfg.lmbdas)
        if cfg.transform == "gdn":
            self.PAD = 64
            self.g_a = nn.Sequential(_conv(3, N), GDN(N), _conv(N, N), GDN(N), _conv(N, N),
                                     GDN(N), _conv(N, M))
            self.g_s = nn.Sequential(_deconv(M, N), GDN(N, inverse=True), _deconv(N, N),
                                     GDN(N, inverse=True), _deconv(N, N), GDN(N, inverse=True),
                                     _deconv(N, 3))
        elif cfg.transform == "dct":
            if M != COEFFS:
                raise ValueError(f"the dct transform has M={COEFFS} latent channels")
            self.PAD = 32
            self.g_a = DctAnalysis(hidden=N)
            self.g_s = DctSynthesis(hidden=N)
        else:
            raise ValueError(f"unknown transform {cfg.transform!r}")
        self.h_a = nn.Sequential(_conv(M, N, 3, 1), nn.LeakyReLU(inplace=True), _conv(N, N),
                                 nn.LeakyReLU(inplace=True), _conv(N, N))
        if cfg.transform == "gdn":
            self.h_s = nn.Sequential(_deconv(N, M), nn.LeakyReLU(inplace=True),
                                     _deconv(M, M * 3 // 2), nn.LeakyReLU(inplace=True),
                                     _conv(M * 3 // 2, M * 2, 3, 1))
        else:  # y sits at 1/8 resolution here: keep the full-size layers light
            self.h_s = nn.Sequential(_deconv(N, M, 3), nn.LeakyReLU(inplace=True),
                                     _deconv(M, M, 3), nn.LeakyReLU(inplace=True),
                                     _conv(M, M * 2, 1, 1))
        self.log_gain = nn.Parameter(torch.zeros(Q, M))
        self.log_inv_gain = nn.Parameter(torch.zeros(Q, M))
        self.log_hgain = nn.Parameter(torch.zeros(Q, N))
        self.log_hinv_gain = nn.Parameter(torch.zeros(Q, N))
        # Start the quality levels apart (higher q, finer steps); the dct transform starts
        # from JPEG-like per-coefficient steps.
        with torch.no_grad():
            if cfg.transform == "dct":
                scale = torch.exp(torch.linspace(math.log(8.0), math.log(0.65), Q))[:, None]
                self.log_gain.copy_(-torch.log(jpeg_like_steps()[None, :] * scale))
            else:
                self.log_gain.add_(torch.linspace(-1.0, 1.0, Q)[:, None])
            self.log_inv_gain.copy_(-self.log_gain)
        self.entropy_bottleneck = FactorizedPrior(N)
        self.gaussian = GaussianConditional(self.scale_bound)
        self.z_tables: CdfTables | None = None
        self._y_tables: CdfTables | None = None

    @property
    def num_qualities(self) -> int:
        return len(self.cfg.lmbdas)

    def _gains(self, q: Tensor):
        g = self.log_gain[q].exp()[:, :, None, None]
        ig = self.log_inv_gain[q].exp()[:, :, None, None]
        hg = self.log_hgain[q].exp()[:, :, None, None]
        hig = self.log_hinv_gain[q].exp()[:, :, None, None]
        return g, ig, hg, hig

    def forward(self, x: Tensor, q: Tensor) -> dict:
        """x: float ``[B,3,H,W]`` in [0,1] (H, W multiples of 64); q: long ``[B]``.

        Training: noisy likelihoods, straight-through rounding into the synthesis. Eval: the
        exact quantized reconstruction that ``decompress(compress(x))`` returns.
        Returns ``x_hat`` and the likelihoods of ``y`` and ``z``.
        """
        if not self.training:
            return self._eval_forward(x, q)
        g, ig, hg, hig = self._gains(q)
        y = self.g_a(x) * g
        z = self.h_a(y) * hg
        z_hat, z_lik = self.entropy_bottleneck(z)
        scales, means = self.h_s(z_hat * hig).chunk(2, 1)
        _, y_lik = self.gaussian(y, scales, means)
        y_hat = _ste_round(y - means) + means
        x_hat = self.g_s(y_hat * ig)
        return {"x_hat": x_hat, "likelihoods": {"y": y_lik, "z": z_lik}}

    def _eval_forward(self, x: Tensor, q: Tensor) -> dict:
        outs = []
        for i in range(x.shape[0]):
            qi = int(q[i])
            y, z_hat, z_lik = self._analysis(x[i : i + 1], qi)
            means, scales, _ = self._hyper_synthesis(z_hat, qi)
            y_hat = (torch.round(y.double() - means) + means).float()
            _, y_lik = self.gaussian(y_hat, scales.float(), means.float())
            outs.append((self._synthesis(y_hat, qi), y_lik, z_lik))
        return {"x_hat": torch.cat([o[0] for o in outs]),
                "likelihoods": {"y": torch.cat([o[1] for o in outs]),
                                "z": torch.cat([o[2] for o in outs])}}

    def aux_loss(self) -> Tensor:
        return self.entropy_bottleneck.loss()

    def _z_medians(self) -> Tensor:
        return self.entropy_bottleneck.medians()

    # ------------------------------------------------------------------ real coding
    def build_z_tables(self, precision: int = 16) -> CdfTables:
        """Freeze the factorized prior of ``z`` into integer tables (stored with the weights)."""
        from neurocodec.entropy.tables import pmf_tables

        eb = self.entropy_bottleneck
        with torch.no_grad():
            q = eb.quantiles[:, 0, :]
            med = q[:, 1]
            lo = torch.clamp(torch.ceil(med - q[:, 0]), min=0).long()
            hi = torch.clamp(torch.ceil(q[:, 2] - med), min=0).long()
            length = lo + hi + 1
            grid = torch.arange(int(length.max()), dtype=torch.float32)[None, :]
            v = (grid + (med - lo.float())[:, None]).unsqueeze(1)  # [C, 1, S]
            lik = eb.likelihood(v, stop_gradient=True)[:, 0].double().numpy()
        pmfs = [lik[c, : int(length[c])] for c in range(lik.shape[0])]
        offsets = -lo.numpy()
        self.z_tables = pmf_tables(pmfs, precision=precision, offsets=np.array(offsets))
        return self.z_tables

    @property
    def y_tables(self) -> CdfTables:
        if self._y_tables is None:
            self._y_tables = gaussian_tables(self.table_scales)
        return self._y_tables

    def _pad(self, x: Tensor) -> tuple[Tensor, tuple[int, int]]:
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.PAD, (-w) % self.PAD
        # Replicate padding codes cheaper than zeros; the decoder crops it away.
        return F.pad(x, (0, pw, 0, ph), mode="replicate"), (h, w)

    def _analysis(self, x: Tensor, q: int) -> tuple[Tensor, Tensor, Tensor]:
        """x ``[1,3,H,W]`` (padded) -> ``y`` (gained), ``z_hat`` and the likelihoods of ``z``."""
        g, _, hg, _ = self._gains(torch.tensor([q]))
        y = self.g_a(x) * g
        z_hat, z_lik = self.entropy_bottleneck(self.h_a(y) * hg, training=False)
        return y, z_hat, z_lik

    def _synthesis(self, y_hat: Tensor, q: int) -> Tensor:
        _, ig, _, _ = self._gains(torch.tensor([q]))
        return self.g_s(y_hat * ig)

    def _hyper_synthesis(self, z_hat: Tensor, q: int) -> tuple[Tensor, Tensor, np.ndarray]:
        """float64 means and scales ``[1,M,h,w]`` and int32 table indexes from ``z_hat``.

        Computed in float64 on one thread: the encoder and the decoder must reach the same
        table indexes whatever their thread count."""
        with single_thread(), torch.no_grad():
            # Always on the CPU in float64, also when the model runs on a GPU: the indexes
            # must not depend on where the decoder runs.
            hig = self.log_hinv_gain[q].detach().cpu().double().exp()[None, :, None, None]
            h_s = copy.deepcopy(self.h_s).to("cpu", torch.float64)
            scales, means = h_s(z_hat.detach().cpu().double() * hig).chunk(2, 1)
        scales = scales.clamp_min(self.scale_bound)
        idx = scale_indexes(scales.numpy(), self.table_scales)
        return means, scales, idx

    @property
    def table_scales(self) -> np.ndarray:
        return default_scale_table(self.scale_bound, 256.0, 64)

    @torch.no_grad()
    def compress(self, x: Tensor, q: int, lanes: int = 32) -> tuple[list[bytes], tuple[int, int]]:
        """x: float ``[1,3,H,W]`` in [0,1], any H, W. Returns the ``[z, y]`` rANS streams and
        the shape of ``z``."""
        if self.z_tables is None:
            raise RuntimeError("z tables missing: call build_z_tables() or load shipped weights")
        xp, _ = self._pad(x)
        y, z_hat, _ = self._analysis(xp, q)
        med = self._z_medians()
        z_sym = torch.round(z_hat - med).to(torch.int32).numpy()
        z_bytes = rans.encode(z_sym.ravel(), self._channel_index(z_sym.shape), self.z_tables,
                              lanes=lanes)
        means, _, idx = self._hyper_synthesis(z_hat, q)
        y_sym = torch.round(y.double() - means).to(torch.int32).numpy()
        y_bytes = rans.encode(y_sym.ravel(), idx.ravel(), self.y_tables, lanes=lanes)
        return [z_bytes, y_bytes], tuple(z_hat.shape[-2:])

    @staticmethod
    def _channel_index(shape) -> np.ndarray:
        return np.broadcast_to(np.arange(shape[1], dtype=np.int32)[None, :, None, None],
                               shape).ravel()

    @torch.no_grad()
    def decompress(self, streams: list[bytes], z_shape: tuple[int, int], q: int,
                   out_hw: tuple[int, int]) -> Tensor:
        """Inverse of :meth:`compress`; returns float ``[1,3,H,W]`` in [0,1] cropped to ``out_hw``.

        On a CUDA model the rANS decode runs in the Triton kernel and the symbols stay on the
        device; the hyper-synthesis that picks the tables stays on the CPU in float64."""
        dev = next(self.parameters()).device
        kernel = dev.type == "cuda" or rans.kernel_forced()
        zs = (1, self.cfg.N, *z_shape)
        zi = self._channel_index(zs)
        if kernel:
            zi = torch.from_numpy(zi.copy()).to(dev)
        z_sym = torch.as_tensor(rans.decode(streams[0], zi, self.z_tables), device=dev)
        z_hat = z_sym.reshape(zs).float() + self._z_medians()
        means, _, idx = self._hyper_synthesis(z_hat, q)
        idx = torch.from_numpy(idx.ravel()).to(dev) if kernel else idx.ravel()
        y_sym = torch.as_tensor(rans.decode(streams[1], idx, self.y_tables), device=dev)
        y_hat = (y_sym.reshape(means.shape).double() + means.to(dev)).float()
        h, w = out_hw
        return self._synthesis(y_hat, q).clamp(0, 1)[..., :h, :w]


def load_compatible(model: nn.Module, state: dict) -> None:
    """Load the tensors ``model`` owns from ``state``, ignoring extra keys (constant buffers
    that CompressAI's layers store); a missing tensor is an error."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    if missing:
        raise KeyError(f"state lacks {len(missing)} tensors, e.g. {missing[0]}")
    model.load_state_dict({k: state[k] for k in own})


def _ste_round(x: Tensor) -> Tensor:
    return (torch.round(x) - x).detach() + x
