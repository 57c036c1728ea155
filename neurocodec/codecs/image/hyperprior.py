"""Variable-rate mean-scale hyperprior (Minnen et al. 2018) with gain units (Cui et al. 2021).

One network covers ``len(lmbdas)`` rate points: quality ``q`` scales the latent ``y`` channel-wise
by ``gain[q]`` before quantization and by ``inv_gain[q]`` before synthesis (and likewise the
hyper-latent ``z``). Training samples ``q`` per image and weights its distortion by ``lmbdas[q]``.

Shapes (``B`` images, ``N`` / ``M`` channels, ``H x W`` padded to a multiple of 64):
``x [B,3,H,W] -> y [B,M,H/16,W/16] -> z [B,N,H/64,W/64]``.

Default size ``N=128, M=192``: about 5.5 M parameters; g_a + g_s + hyper ≈ 160 kMAC/pixel.

Entropy coding goes through :mod:`neurocodec.entropy`: ``z`` with integer per-channel tables
stored beside the weights (so encoder and decoder never rebuild them from floats), ``y`` with
the Gaussian scale tables, indexed from scales computed in float64 on one thread.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.layers import GDN
from torch import Tensor, nn

from neurocodec.entropy import rans
from neurocodec.entropy.tables import CdfTables, default_scale_table, gaussian_tables, scale_indexes

DEFAULT_LMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483)


@dataclass
class HyperpriorConfig:
    N: int = 128
    M: int = 192
    lmbdas: tuple[float, ...] = field(default_factory=lambda: DEFAULT_LMBDAS)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["lmbdas"] = list(self.lmbdas)
        return d


def _conv(cin: int, cout: int, k: int = 5, s: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=s, padding=k // 2)


def _deconv(cin: int, cout: int, k: int = 5, s: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, k, stride=s, padding=k // 2, output_padding=s - 1)


class single_thread:
    """Run a block with one torch thread, so float results do not depend on the thread count."""

    def __enter__(self):
        self.n = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.n)


class ScaleHyperprior(nn.Module):
    """The network. ``forward`` is the training pass; ``compress``/``decompress`` code real bits."""

    PAD = 64
    scale_bound = 0.11

    def __init__(self, cfg: HyperpriorConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or HyperpriorConfig()
        N, M, Q = cfg.N, cfg.M, len(cfg.lmbdas)
        self.g_a = nn.Sequential(_conv(3, N), GDN(N), _conv(N, N), GDN(N), _conv(N, N), GDN(N),
                                 _conv(N, M))
        self.g_s = nn.Sequential(_deconv(M, N), GDN(N, inverse=True), _deconv(N, N),
                                 GDN(N, inverse=True), _deconv(N, N), GDN(N, inverse=True),
                                 _deconv(N, 3))
        self.h_a = nn.Sequential(_conv(M, N, 3, 1), nn.LeakyReLU(inplace=True), _conv(N, N),
                                 nn.LeakyReLU(inplace=True), _conv(N, N))
        self.h_s = nn.Sequential(_deconv(N, M), nn.LeakyReLU(inplace=True),
                                 _deconv(M, M * 3 // 2), nn.LeakyReLU(inplace=True),
                                 _conv(M * 3 // 2, M * 2, 3, 1))
        self.log_gain = nn.Parameter(torch.zeros(Q, M))
        self.log_inv_gain = nn.Parameter(torch.zeros(Q, M))
        self.log_hgain = nn.Parameter(torch.zeros(Q, N))
        self.log_hinv_gain = nn.Parameter(torch.zeros(Q, N))
        # Spread the initial gains so the quality levels start apart (higher q, finer steps).
        with torch.no_grad():
            spread = torch.linspace(-1.0, 1.0, Q)[:, None]
            self.log_gain.add_(spread)
            self.log_inv_gain.sub_(spread)
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.gaussian = GaussianConditional(None, scale_bound=self.scale_bound)
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
        """Training pass. x: float ``[B,3,H,W]`` in [0,1] (H, W multiples of 64); q: long ``[B]``.

        Returns ``x_hat`` and the likelihoods of ``y`` and ``z``.
        """
        g, ig, hg, hig = self._gains(q)
        y = self.g_a(x) * g
        z = self.h_a(y) * hg
        z_tilde, z_lik = self.entropy_bottleneck(z)
        z_hat = _ste_round(z - self._z_medians()) + self._z_medians() if not self.training else z_tilde
        scales, means = self.h_s(z_hat * hig).chunk(2, 1)
        _, y_lik = self.gaussian(y, scales, means)
        y_hat = _ste_round(y - means) + means
        x_hat = self.g_s(y_hat * ig)
        return {"x_hat": x_hat, "likelihoods": {"y": y_lik, "z": z_lik}}

    def aux_loss(self) -> Tensor:
        return self.entropy_bottleneck.loss()

    def _z_medians(self) -> Tensor:
        return self.entropy_bottleneck.quantiles[:, 0, 1].detach()[None, :, None, None]

    # ------------------------------------------------------------------ real coding
    def build_z_tables(self, precision: int = 16) -> CdfTables:
        """Freeze the factorized prior of ``z`` into integer tables (stored with the weights)."""
        from neurocodec.entropy.tables import pmf_tables

        eb = self.entropy_bottleneck
        with torch.no_grad():
            q = eb.quantiles[:, 0, :].double()
            med = q[:, 1]
            lo = torch.clamp(torch.ceil(med - q[:, 0]), min=0).long()
            hi = torch.clamp(torch.ceil(q[:, 2] - med), min=0).long()
            pmfs, offsets = [], []
            for c in range(q.shape[0]):
                v = torch.arange(-int(lo[c]), int(hi[c]) + 1, dtype=torch.float32) + med[c].float()
                lik, _, _ = eb._likelihood(v.view(1, 1, -1).expand(q.shape[0], 1, -1).contiguous(),
                                           stop_gradient=True)
                pmfs.append(lik[c, 0].double().numpy())
                offsets.append(-int(lo[c]))
        self.z_tables = pmf_tables(pmfs, precision=precision, offsets=np.array(offsets))
        return self.z_tables

    @property
    def y_tables(self) -> CdfTables:
        if self._y_tables is None:
            self._y_tables = gaussian_tables(default_scale_table(self.scale_bound, 256.0, 64))
        return self._y_tables

    def _pad(self, x: Tensor) -> tuple[Tensor, tuple[int, int]]:
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.PAD, (-w) % self.PAD
        # Replicate padding codes cheaper than zeros; the decoder crops it away.
        return F.pad(x, (0, pw, 0, ph), mode="replicate"), (h, w)

    def _hyper_synthesis(self, z_hat: Tensor, q: int) -> tuple[Tensor, np.ndarray]:
        """Means and table indexes from ``z_hat``, in float64 on one thread: the encoder and the
        decoder must get the same indexes whatever the thread count."""
        with single_thread():
            hig = self.log_hinv_gain[q].double().exp()[None, :, None, None]
            h_s = self.h_s.double()
            scales, means = h_s(z_hat.double() * hig).chunk(2, 1)
            self.h_s.float()
        idx = scale_indexes(scales.clamp_min(self.scale_bound).numpy(), default_scale_table(
            self.scale_bound, 256.0, 64))
        return means, idx

    @torch.no_grad()
    def compress(self, x: Tensor, q: int, lanes: int = 32) -> tuple[list[bytes], tuple[int, int]]:
        """x: float ``[1,3,H,W]`` in [0,1]. Returns the ``[z, y]`` streams and the latent shape."""
        if self.z_tables is None:
            raise RuntimeError("z tables missing: call build_z_tables() or load shipped weights")
        xp, _ = self._pad(x)
        qt = torch.tensor([q])
        g, _, hg, _ = self._gains(qt)
        y = self.g_a(xp) * g
        z = self.h_a(y) * hg
        z_sym = torch.round(z - self._z_medians()).to(torch.int32)
        z_hat = z_sym.to(torch.float32) + self._z_medians()
        zi = np.broadcast_to(np.arange(z.shape[1], dtype=np.int32)[None, :, None, None],
                             z.shape).ravel()
        z_bytes = rans.encode(z_sym.numpy().ravel(), zi, self.z_tables, lanes=lanes)
        means, idx = self._hyper_synthesis(z_hat, q)
        y_sym = torch.round(y.double() - means).to(torch.int32)
        y_bytes = rans.encode(y_sym.numpy().ravel(), idx.ravel(), self.y_tables, lanes=lanes)
        return [z_bytes, y_bytes], tuple(z.shape[-2:])

    @torch.no_grad()
    def decompress(self, streams: list[bytes], z_shape: tuple[int, int], q: int,
                   out_hw: tuple[int, int]) -> Tensor:
        """Inverse of :meth:`compress`; returns float ``[1,3,H,W]`` in [0,1] cropped to ``out_hw``."""
        N, M = self.cfg.N, self.cfg.M
        zh, zw = z_shape
        zi = np.broadcast_to(np.arange(N, dtype=np.int32)[None, :, None, None],
                             (1, N, zh, zw)).ravel()
        z_sym = rans.decode(streams[0], zi, self.z_tables).reshape(1, N, zh, zw)
        z_hat = torch.from_numpy(z_sym).float() + self._z_medians()
        means, idx = self._hyper_synthesis(z_hat, q)
        y_sym = rans.decode(streams[1], idx.ravel(), self.y_tables).reshape(1, M, 4 * zh, 4 * zw)
        y_hat = (torch.from_numpy(y_sym).double() + means).float()
        _, ig, _, _ = self._gains(torch.tensor([q]))
        x_hat = self.g_s(y_hat * ig).clamp(0, 1)
        h, w = out_hw
        return x_hat[..., :h, :w]


def _ste_round(x: Tensor) -> Tensor:
    return (torch.round(x) - x).detach() + x
