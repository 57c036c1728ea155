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
the Gaussian scale tables, indexed from scales computed in float64 on one thread. The decoder's
synthesis is integer-exact for ``transform="dct"``, so the pixels do not depend on the machine
(docs/determinism.md).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from neurocodec.codecs.image.base import (
    DEFAULT_LMBDAS,
    Relaxation,
    VariableRateImageModel,
    conv,
    deconv,
    load_compatible,
    ste_round,
)
from neurocodec.determinism import single_thread
from neurocodec.entropy import dispatch
from neurocodec.entropy.dispatch import StreamDecoder
from neurocodec.entropy.tables import scale_indexes
from neurocodec.transforms.blockdct import COEFFS, DctAnalysis, DctSynthesis
from neurocodec.transforms.gdn import GDN

__all__ = ["DEFAULT_LMBDAS", "HyperpriorConfig", "ScaleHyperprior", "load_compatible"]


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


class ScaleHyperprior(VariableRateImageModel):
    """The network. ``forward`` is the training pass; ``compress``/``decompress`` code real bits."""

    def __init__(self, cfg: HyperpriorConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or HyperpriorConfig()
        N, M, Q = cfg.N, cfg.M, len(cfg.lmbdas)
        if cfg.transform == "gdn":
            self.PAD = 64
            self.g_a = nn.Sequential(conv(3, N), GDN(N), conv(N, N), GDN(N), conv(N, N),
                                     GDN(N), conv(N, M))
            self.g_s = nn.Sequential(deconv(M, N), GDN(N, inverse=True), deconv(N, N),
                                     GDN(N, inverse=True), deconv(N, N), GDN(N, inverse=True),
                                     deconv(N, 3))
        elif cfg.transform == "dct":
            if M != COEFFS:
                raise ValueError(f"the dct transform has M={COEFFS} latent channels")
            self.PAD = 32
            self.g_a = DctAnalysis(hidden=N)
            self.g_s = DctSynthesis(hidden=N)
        else:
            raise ValueError(f"unknown transform {cfg.transform!r}")
        self.h_a = nn.Sequential(conv(M, N, 3, 1), nn.LeakyReLU(inplace=True), conv(N, N),
                                 nn.LeakyReLU(inplace=True), conv(N, N))
        if cfg.transform == "gdn":
            self.h_s = nn.Sequential(deconv(N, M), nn.LeakyReLU(inplace=True),
                                     deconv(M, M * 3 // 2), nn.LeakyReLU(inplace=True),
                                     conv(M * 3 // 2, M * 2, 3, 1))
        else:  # y sits at 1/8 resolution here: keep the full-size layers light
            self.h_s = nn.Sequential(deconv(N, M, 3), nn.LeakyReLU(inplace=True),
                                     deconv(M, M, 3), nn.LeakyReLU(inplace=True),
                                     conv(M, M * 2, 1, 1))
        self._init_rate(N, M, Q)
        self._spread_gains(cfg.transform == "dct")

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
        y_hat = ste_round(y - means) + means
        x_hat = self.g_s(y_hat * ig)
        return {"x_hat": x_hat, "likelihoods": {"y": y_lik, "z": z_lik}}

    def _eval_latents(self, y: Tensor, z: Tensor, q: int, synthesis: bool = True) -> dict:
        """The exact quantized pass from continuous ``y [1,M,h,w]`` and ``z``: what
        ``decompress(compress_latents(y, z))`` reconstructs (padded, unclamped ``x_hat``;
        None without ``synthesis``), and the likelihoods of the coded values."""
        z_hat, z_lik = self.entropy_bottleneck(z, training=False)
        means, scales, _ = self._hyper_synthesis(z_hat, q)
        y_hat = (torch.round(y.double() - means) + means).float()
        _, y_lik = self.gaussian(y_hat, scales.float(), means.float(), training=False)
        return {"x_hat": self._decode_synthesis(y_hat, q) if synthesis else None,
                "likelihoods": {"y": y_lik, "z": z_lik}}

    def relaxed_pass(self, y: Tensor, z: Tensor, q: int, quantize: Relaxation
                     ) -> tuple[Tensor, dict[str, Tensor]]:
        """See :meth:`VariableRateImageModel.relaxed_pass`; the hyper-synthesis runs in the
        model's float precision here (only the real coder needs the float64 one)."""
        _, ig, _, hig = self._gains(torch.tensor([q]))
        z_t = quantize(z, self._z_medians())
        scales, means = self.h_s(z_t * hig).chunk(2, 1)
        y_t = quantize(y, means)
        lik = {"y": self.gaussian.likelihood(y_t, scales, means),
               "z": self.entropy_bottleneck.bin_likelihood(z_t)}
        return self.g_s(y_t * ig), lik

    def stream_symbol_counts(self, z_shape: tuple[int, int]) -> list[int]:
        """Symbols in each rANS stream (``[z, y]``) of an image whose ``z`` is ``z_shape``;
        ``y`` is 4x ``z`` on each side (``h_a`` downsamples twice). The decoder checks each
        stream's header against these before it runs a network or allocates for the file."""
        zh, zw = z_shape
        return [self.entropy_bottleneck.channels * zh * zw, self.cfg.M * 16 * zh * zw]

    # ------------------------------------------------------------------ real coding
    def entropy_nets(self) -> nn.Module:
        """The float64 CPU copy of ``h_s`` the hyper-synthesis runs (see
        :meth:`_hyper_synthesis`), shared by the tiles of an image."""
        return copy.deepcopy(self.h_s).to("cpu", torch.float64)

    def _hyper_synthesis(self, z_hat: Tensor, q: int, h_s: nn.Module | None = None
                         ) -> tuple[Tensor, Tensor, np.ndarray]:
        """float64 means and scales ``[1,M,h,w]`` and int32 table indexes from ``z_hat``
        (``h_s``: :meth:`entropy_nets`, made here when not given).

        Computed in float64 on one thread: the encoder and the decoder must reach the same
        table indexes whatever their thread count."""
        h_s = h_s if h_s is not None else self.entropy_nets()
        with single_thread(), torch.no_grad():
            # Always on the CPU in float64, also when the model runs on a GPU: the indexes
            # must not depend on where the decoder runs.
            hig = self._hyper_inv_gain64(q)
            scales, means = h_s(z_hat.detach().cpu().double() * hig).chunk(2, 1)
        scales = scales.clamp_min(self.scale_bound)
        idx = scale_indexes(scales.numpy(), self.table_scales)
        return means, scales, idx

    @torch.no_grad()
    def compress(self, x: Tensor, q: int, lanes: int = 32) -> tuple[list[bytes], tuple[int, int]]:
        """x: float ``[1,3,H,W]`` in [0,1], any H, W. Returns the ``[z, y]`` rANS streams and
        the shape of ``z``."""
        return self.compress_latents(*self._analysis_latents(self._pad(x)[0], q), q, lanes)

    @torch.no_grad()
    def compress_latents(self, y: Tensor, z: Tensor, q: int, lanes: int = 32
                         ) -> tuple[list[bytes], tuple[int, int]]:
        """Code continuous, gained ``y [1,M,h,w]`` and ``z [1,N,h/s,w/s]`` (from the analysis
        of the padded image, or refined from it): the streams :meth:`compress` returns. The
        tables of ``y`` come from the coded ``z_hat`` as the decoder computes them."""
        z_hat, _ = self.entropy_bottleneck(z, training=False)
        z_bytes = self._encode_z(z_hat, lanes)
        means, _, idx = self._hyper_synthesis(z_hat, q)
        y_sym = torch.round(y.detach().cpu().double() - means).to(torch.int32).numpy()
        y_bytes = dispatch.encode(y_sym.ravel(), idx.ravel(), self.y_tables, lanes=lanes)
        return [z_bytes, y_bytes], tuple(z_hat.shape[-2:])

    @torch.no_grad()
    def latent_decoder(self, streams: list[bytes], z_shape: tuple[int, int], q: int,
                       nets=None) -> StreamDecoder:
        """The streams of :meth:`compress_latents` -> float32 ``y_hat [1,M,4*zh,4*zw]``
        (before the inverse gain), which :meth:`_decode_synthesis` turns into pixels; a stream
        decoder (see :meth:`VariableRateImageModel.latent_decoder`).

        On a CUDA model the rANS decode runs in the Triton kernel and the symbols stay on the
        device; the hyper-synthesis that picks the tables stays on the CPU in float64."""
        dev = next(self.parameters()).device
        kernel = dev.type == "cuda" or dispatch.kernel_forced()
        z_hat = yield from self._z_decoder(streams[0], z_shape, kernel)
        means, _, idx = self._hyper_synthesis(z_hat, q, nets)
        idx = torch.from_numpy(idx.ravel()).to(dev) if kernel else idx.ravel()
        y_sym = yield streams[1], idx, self.y_tables
        del idx
        y_sym = torch.as_tensor(y_sym, device=dev)
        return (y_sym.reshape(means.shape).double() + means.to(dev)).float()
