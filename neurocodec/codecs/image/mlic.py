"""MLIC-style multi-reference image codec (Jiang et al. 2023, MLIC/MLIC++), sized for CPUs.

``x [B,3,H,W] -> y [B,M,H/16,W/16] -> z [B,N,H/64,W/64]`` (H, W padded to 64), variable rate
through gain units as :class:`~neurocodec.codecs.image.hyperprior.ScaleHyperprior`.

* Transforms: strided 5x5 convolutions with GDN, plus MetaFormer blocks — a depthwise-conv
  token mixer at 1/4 and global linear self-attention at 1/8 resolution, on both sides.
  Hyperprior as Minnen et al.; its synthesis gives ``M`` feature channels at the resolution
  of ``y``.
* Entropy model (:mod:`neurocodec.codecs.image.latent_codecs`): ``slices`` channel slices, each
  coded in two checkerboard passes, with local spatial context (anchors -> non-anchors),
  global intra-slice context (linear attention over the decoded anchors), local channel
  context and global inter-slice context (linear attention over the earlier slices), and
  latent residual prediction. Decoding is ``2 * slices`` parallel passes, never a raster scan.

Default size (``N=80, M=160, slices=10, hidden=48``), measured with
``torch.utils.flop_counter.FlopCounterMode`` on a 256x256 input
(``python -m neurocodec.codecs.image.mlic`` prints these):

=======================  ==========  ==============
part                     parameters  kMAC / pixel
=======================  ==========  ==============
analysis ``g_a``         0.76 M      20.8
synthesis ``g_s``        0.76 M      20.8
hyperprior ``h_a, h_s``  1.01 M       1.6
entropy model (slices)   1.44 M       7.2
total                    3.98 M      50.5
=======================  ==========  ==============

Decoding costs ``g_s + h_s + slices``, ~29 kMAC/pixel (the last two in float64 on the CPU).

The shipped ``mlic-vr`` (``transform="dct", N=96, M=192, slices=8, hidden=32``: the DCT-start
transforms of ``hyperprior-vr``, ``y`` at 1/8) is smaller: ``g_a`` 0.22 M / 3.5 kMAC,
``g_s`` 0.22 M / 6.6 kMAC, hyperprior 0.79 M / 7.5 kMAC, entropy model 0.86 M / 16.5 kMAC;
total **2.11 M parameters, 34.1 kMAC/pixel** (same counter, ``model_stats(cfg)``).

Determinism: ``compress``, ``decompress`` and the evaluation ``forward`` run the
hyper-synthesis and every context network on the CPU in float64 on one thread, from exactly
the values the decoder has (decoded ``y_hat``, zeros where nothing is decoded yet), in the
same pass order; the decoder's ``y_hat = symbol + mean`` is computed the same way on both
sides. So table indexes and means agree bit for bit whatever the thread count. The synthesis
of the decoder is integer-exact for ``transform="dct"`` (machine-independent) and float64 on
one thread otherwise: docs/determinism.md.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn

from neurocodec.codecs.image.base import (
    DEFAULT_LMBDAS,
    Relaxation,
    VariableRateImageModel,
    conv,
    deconv,
)
from neurocodec.codecs.image.latent_codecs import (
    ChannelSlices,
    PassCoder,
    RoundingCoder,
    SlicesOutput,
    STEQuantizer,
    decode_passes,
    lanes_for,
)
from neurocodec.determinism import single_thread
from neurocodec.entropy.dispatch import StreamDecoder
from neurocodec.errors import BitstreamError
from neurocodec.transforms.blockdct import COEFFS, DctAnalysis, DctSynthesis
from neurocodec.transforms.gdn import GDN
from neurocodec.transforms.metaformer import attention_block, conv_block

__all__ = ["MLICConfig", "MLICModel", "model_stats"]


@dataclass
class MLICConfig:
    N: int = 80  # transform and hyper-latent channels
    M: int = 160  # latent channels
    slices: int = 10
    hidden: int = 48  # width of the context networks
    heads: int = 4  # linear-attention heads (must divide N and hidden)
    # "gdn": conv/GDN/MetaFormer transforms, y at 1/16. "dct": the KLT + 8x8 DCT-start
    # transforms of neurocodec.transforms.blockdct (y at 1/8, M must be 192, H/W padded to
    # 32), which train to a usable model within CPU-hours; the entropy model is the same.
    transform: str = "gdn"
    lmbdas: tuple[float, ...] = field(default_factory=lambda: DEFAULT_LMBDAS)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["lmbdas"] = list(self.lmbdas)
        return d


class MLICModel(VariableRateImageModel):
    """The network. ``forward`` is the training pass (the exact quantized pass in eval mode);
    ``compress``/``decompress`` code real bits, ``1 + 2 * slices`` rANS streams per image."""

    PAD = 64
    codec_name = "mlic"

    def __init__(self, cfg: MLICConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or MLICConfig()
        N, M, Q, heads = cfg.N, cfg.M, len(cfg.lmbdas), cfg.heads
        if cfg.transform == "gdn":
            self.g_a = nn.Sequential(conv(3, N), GDN(N), conv(N, N), GDN(N), conv_block(N),
                                     conv(N, N), GDN(N), attention_block(N, heads), conv(N, M))
            self.g_s = nn.Sequential(deconv(M, N), GDN(N, inverse=True),
                                     attention_block(N, heads), deconv(N, N),
                                     GDN(N, inverse=True), conv_block(N), deconv(N, N),
                                     GDN(N, inverse=True), deconv(N, 3))
            k = 5
        elif cfg.transform == "dct":
            if M != COEFFS:
                raise ValueError(f"the dct transform has M={COEFFS} latent channels")
            self.PAD = 32
            self.g_a, self.g_s = DctAnalysis(hidden=N), DctSynthesis(hidden=N)
            k = 3  # y is at 1/8 here: lighter hyper layers, z at 1/32
        else:
            raise ValueError(f"unknown transform {cfg.transform!r}")
        self.h_a = nn.Sequential(conv(M, N, 3, 1), nn.LeakyReLU(inplace=True), conv(N, N, k),
                                 nn.LeakyReLU(inplace=True), conv(N, N, k))
        self.h_s = nn.Sequential(deconv(N, N, k), nn.LeakyReLU(inplace=True),
                                 deconv(N, N * 3 // 2, k), nn.LeakyReLU(inplace=True),
                                 conv(N * 3 // 2, M, 3, 1))
        self.slices = ChannelSlices(M, cfg.slices, hyper_ch=M, hidden=cfg.hidden, heads=heads)
        self._init_rate(N, M, Q)
        self._spread_gains(cfg.transform == "dct")

    @property
    def num_streams(self) -> int:
        return 1 + 2 * self.cfg.slices

    def forward(self, x: Tensor, q: Tensor) -> dict:
        """x: float ``[B,3,H,W]`` in [0,1] (H, W multiples of 64); q: long ``[B]``.

        Training: noisy likelihoods, straight-through rounding into the contexts and the
        synthesis. Eval: the exact quantized reconstruction that ``decompress(compress(x))``
        returns. Returns ``x_hat`` and the likelihoods of ``y`` ``[B,M,H/16,W/16]`` and ``z``.
        """
        if not self.training:
            return self._eval_forward(x, q)
        g, ig, hg, hig = self._gains(q)
        y = self.g_a(x) * g
        z_hat, z_lik = self.entropy_bottleneck(self.h_a(y) * hg)
        hyper = self.h_s(z_hat * hig)
        out = self.slices(hyper, STEQuantizer(list(y.split(self.slices.sizes, 1))))
        _, y_lik = self.gaussian(y, out.scales, out.means)
        return {"x_hat": self.g_s(out.y_hat * ig), "likelihoods": {"y": y_lik, "z": z_lik}}

    def _eval_latents(self, y: Tensor, z: Tensor, q: int, synthesis: bool = True) -> dict:
        """The exact quantized pass from continuous ``y [1,M,h,w]`` and ``z``: what
        ``decompress(compress_latents(y, z))`` reconstructs (padded, unclamped ``x_hat``;
        None without ``synthesis``), and the likelihoods of the coded values."""
        z_hat, z_lik = self.entropy_bottleneck(z, training=False)
        out = self._entropy_model(z_hat, q, self._rounding_coder(y))
        _, y_lik = self.gaussian(out.y_coded.float(), out.scales.float(), out.means.float(),
                                 training=False)
        x_hat = self._decode_synthesis(out.y_hat.float().to(y.device), q) if synthesis else None
        return {"x_hat": x_hat, "likelihoods": {"y": y_lik.to(y.device), "z": z_lik}}

    def relaxed_pass(self, y: Tensor, z: Tensor, q: int, quantize: Relaxation
                     ) -> tuple[Tensor, dict[str, Tensor]]:
        """See :meth:`VariableRateImageModel.relaxed_pass`: the slice passes see the relaxed
        values of the earlier passes, as the training pass sees the rounded ones."""
        _, ig, _, hig = self._gains(torch.tensor([q]))
        z_t = quantize(z, self._z_medians())
        y_slices = y.split(self.slices.sizes, 1)
        out = self.slices(self.h_s(z_t * hig),
                          lambda i, k, mask, means, scales: quantize(y_slices[i], means))
        lik = {"y": self.gaussian.likelihood(out.y_coded, out.scales, out.means),
               "z": self.entropy_bottleneck.bin_likelihood(z_t)}
        return self.g_s(out.y_hat * ig), lik

    def stream_symbol_counts(self, z_shape: tuple[int, int]) -> list[int]:
        """Symbols in each rANS stream of an image whose ``z`` is ``z_shape``: ``z``, then
        per slice of ``c`` channels ``c x anchors`` and ``c x non-anchors`` of the ``y`` grid
        (4x ``z`` on each side). The decoder checks each stream's header against these
        before it runs a network or allocates for the file."""
        zh, zw = z_shape
        cells = 16 * zh * zw
        anchors = (cells + 1) // 2  # (row + col) even: the larger half of an odd grid
        counts = [self.entropy_bottleneck.channels * zh * zw]
        for c in self.slices.sizes:
            counts += [c * anchors, c * (cells - anchors)]
        return counts

    # ------------------------------------------------------------------ real coding
    def _rounding_coder(self, y: Tensor) -> RoundingCoder:
        y64 = y.detach().cpu().double()
        return RoundingCoder(list(y64.split(self.slices.sizes, 1)), self.table_scales,
                             self.scale_bound)

    def entropy_nets(self) -> tuple[nn.Module, ChannelSlices]:
        """float64 CPU copies of ``h_s`` and the slice model: the entropy model runs on the
        CPU in float64 on one thread (also when the model runs on a GPU: the table indexes
        must not depend on where or with how many threads the decoder runs)."""
        return (copy.deepcopy(self.h_s).to("cpu", torch.float64),
                copy.deepcopy(self.slices).to("cpu", torch.float64))

    def _hyper64(self, h_s: nn.Module, z_hat: Tensor, q: int) -> Tensor:
        with single_thread(), torch.no_grad():
            return h_s(z_hat.detach().cpu().double() * self._hyper_inv_gain64(q))

    def _entropy_model(self, z_hat: Tensor, q: int, coder: PassCoder) -> SlicesOutput:
        """Hyper-synthesis and the slice passes from ``z_hat [1,N,h,w]`` (see
        :meth:`entropy_nets`). Outputs are float64 CPU."""
        h_s, slices = self.entropy_nets()
        hyper = self._hyper64(h_s, z_hat, q)
        with single_thread(), torch.no_grad():
            return slices(hyper, coder)

    @torch.no_grad()
    def compress(self, x: Tensor, q: int, lanes: int | None = None
                 ) -> tuple[list[bytes], tuple[int, int]]:
        """x: float ``[1,3,H,W]`` in [0,1], any H, W. Returns the rANS streams ``[z, slice 0
        anchors, slice 0 non-anchors, slice 1 anchors, ...]`` and the shape of ``z``.
        ``lanes``: rANS lanes per stream (default: by stream size, see ``lanes_for``)."""
        return self.compress_latents(*self._analysis_latents(self._pad(x)[0], q), q, lanes)

    @torch.no_grad()
    def compress_latents(self, y: Tensor, z: Tensor, q: int, lanes: int | None = None
                         ) -> tuple[list[bytes], tuple[int, int]]:
        """Code continuous, gained ``y [1,M,h,w]`` and ``z [1,N,h/64,w/64]`` (from the analysis
        of the padded image, or refined from it): the streams :meth:`compress` returns."""
        z_hat, _ = self.entropy_bottleneck(z, training=False)
        z_bytes = self._encode_z(z_hat, lanes or lanes_for(z_hat.numel()))
        coder = self._rounding_coder(y)
        self._entropy_model(z_hat, q, coder)
        return [z_bytes, *coder.streams(self.y_tables, lanes)], tuple(z_hat.shape[-2:])

    @torch.no_grad()
    def latent_decoder(self, streams: list[bytes], z_shape: tuple[int, int], q: int,
                       nets: tuple[nn.Module, ChannelSlices] | None = None) -> StreamDecoder:
        """The streams of :meth:`compress_latents` -> float32 ``y_hat [1,M,4*zh,4*zw]``
        (before the inverse gain) on the model's device, as a stream decoder (see
        :meth:`VariableRateImageModel.latent_decoder`). The rANS passes decode on the CPU
        (their indexes are made there)."""
        if len(streams) != self.num_streams:
            raise BitstreamError(f"expected {self.num_streams} streams, got {len(streams)}")
        z_hat = yield from self._z_decoder(streams[0], z_shape)
        h_s, slices = nets or self.entropy_nets()
        out = yield from decode_passes(slices.passes(self._hyper64(h_s, z_hat, q)), streams[1:],
                                       self.y_tables, self.table_scales, self.scale_bound)
        return out.y_hat.float().to(self._z_medians().device)


def model_stats(cfg: MLICConfig | None = None, size: int = 256) -> dict[str, tuple[int, float]]:
    """Parameters and multiply-adds per pixel of each part, on a ``size x size`` input."""
    from torch.utils.flop_counter import FlopCounterMode

    model = MLICModel(cfg).train()
    x = torch.rand(1, 3, size, size)
    parts = {"g_a": ["g_a"], "g_s": ["g_s"], "h_a+h_s": ["h_a", "h_s"], "slices": ["slices"]}
    with FlopCounterMode(display=False) as fc:
        model(x, torch.tensor([0]))
    counts = fc.get_flop_counts()  # keyed "MLICModel.<submodule>"
    stats = {}
    for part, names in parts.items():
        params = sum(p.numel() for n in names for p in model.get_submodule(n).parameters())
        flops = sum(sum(counts.get(f"MLICModel.{n}", {}).values()) for n in names)
        stats[part] = (params, flops / 2 / size**2)  # a multiply-add is two flops
    total = sum(p.numel() for p in model.parameters())
    stats["total"] = (total, sum(v[1] for v in stats.values()))
    return stats


if __name__ == "__main__":
    for k, (p, mac) in model_stats().items():
        print(f"{k:10s} {p / 1e6:6.2f} M params {mac / 1e3:7.1f} kMAC/pixel")
