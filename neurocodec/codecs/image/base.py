"""What every variable-rate image model here shares: gain units, the hyper-latent prior and its
integer tables, the Gaussian scale tables of ``y``, padding and the rANS coding of ``z``.

A model subclasses :class:`VariableRateImageModel`, builds its transforms, then calls
:meth:`~VariableRateImageModel._init_rate` (parameter names ``log_gain``, ``log_inv_gain``,
``log_hgain``, ``log_hinv_gain``, ``entropy_bottleneck.*`` are part of the saved-weights format).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurocodec.determinism import single_thread
from neurocodec.entropy import dispatch
from neurocodec.entropy.dispatch import StreamDecoder
from neurocodec.entropy.models import FactorizedPrior, GaussianConditional
from neurocodec.entropy.tables import CdfTables, default_scale_table, gaussian_tables, pmf_tables
from neurocodec.transforms.exact import ExactSynthesis, UnsupportedModule, exact_exp

DEFAULT_LMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483)

# ``quantize(v, center) -> v_tilde``: a differentiable stand-in for ``round(v - center) + center``.
Relaxation = Callable[[Tensor, Tensor], Tensor]


def ste_round(x: Tensor) -> Tensor:
    """``round(x)`` forward, identity backward."""
    return (torch.round(x) - x).detach() + x


def load_compatible(model: nn.Module, state: dict) -> None:
    """Load the tensors ``model`` owns from ``state``, ignoring extra keys (constant buffers
    that CompressAI's layers store); a missing tensor is an error."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    if missing:
        raise KeyError(f"state lacks {len(missing)} tensors, e.g. {missing[0]}")
    model.load_state_dict({k: state[k] for k in own})


def conv(cin: int, cout: int, k: int = 5, s: int = 2) -> nn.Conv2d:
    """``k x k`` convolution, stride ``s``, "same" padding (so H/s x W/s out)."""
    return nn.Conv2d(cin, cout, k, stride=s, padding=k // 2)


def deconv(cin: int, cout: int, k: int = 5, s: int = 2) -> nn.ConvTranspose2d:
    """Transposed convolution that multiplies H and W by ``s`` exactly."""
    return nn.ConvTranspose2d(cin, cout, k, stride=s, padding=k // 2, output_padding=s - 1)


def channel_index(shape) -> np.ndarray:
    """int32 table index = channel of each element of a ``[1, C, h, w]`` tensor, flattened."""
    return np.broadcast_to(np.arange(shape[1], dtype=np.int32)[None, :, None, None],
                           shape).ravel()


class VariableRateImageModel(nn.Module):
    """Base of the image models: ``y`` has ``M`` channels, ``z`` has ``N``; ``PAD`` is the
    multiple that H and W are padded to (set by the subclass). Subclasses own the transforms
    ``g_a``, ``g_s``, ``h_a`` and ``h_s``."""

    scale_bound = 0.11
    PAD = 64
    codec_name = "hyperprior"  # the container's codec field; the registry dispatches on it

    def _init_rate(self, N: int, M: int, Q: int) -> None:
        """Gain units for ``Q`` qualities (identity at start) and the entropy models."""
        self.log_gain = nn.Parameter(torch.zeros(Q, M))
        self.log_inv_gain = nn.Parameter(torch.zeros(Q, M))
        self.log_hgain = nn.Parameter(torch.zeros(Q, N))
        self.log_hinv_gain = nn.Parameter(torch.zeros(Q, N))
        self.entropy_bottleneck = FactorizedPrior(N)
        self.gaussian = GaussianConditional(self.scale_bound)
        self.z_tables: CdfTables | None = None
        self._y_tables: CdfTables | None = None

    def _spread_gains(self, dct: bool) -> None:
        """Start the quality levels apart (higher q, finer steps). With the DCT-start
        transforms, from JPEG-like per-coefficient steps (8x to 0.65x the Annex K tables)."""
        from neurocodec.transforms.blockdct import jpeg_like_steps

        Q = self.log_gain.shape[0]
        with torch.no_grad():
            if dct:
                scale = torch.exp(torch.linspace(math.log(8.0), math.log(0.65), Q))[:, None]
                self.log_gain.copy_(-torch.log(jpeg_like_steps()[None, :] * scale))
            else:
                self.log_gain.add_(torch.linspace(-1.0, 1.0, Q)[:, None])
            self.log_inv_gain.copy_(-self.log_gain)

    @property
    def num_qualities(self) -> int:
        return self.log_gain.shape[0]

    @property
    def num_streams(self) -> int:
        """rANS streams per image: ``z`` and ``y``."""
        return 2

    def _gains(self, q: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """q: long ``[B]`` -> gain, inverse gain ``[B,M,1,1]``, hyper gain, inverse ``[B,N,1,1]``."""
        g = self.log_gain[q].exp()[:, :, None, None]
        ig = self.log_inv_gain[q].exp()[:, :, None, None]
        hg = self.log_hgain[q].exp()[:, :, None, None]
        hig = self.log_hinv_gain[q].exp()[:, :, None, None]
        return g, ig, hg, hig

    def _hyper_inv_gain64(self, q: int) -> Tensor:
        """float64 CPU ``[1,N,1,1]``: the decoder-side hyper gain, for the float64 entropy nets."""
        return self.log_hinv_gain[q].detach().cpu().double().exp()[None, :, None, None]

    def aux_loss(self) -> Tensor:
        return self.entropy_bottleneck.loss()

    def _z_medians(self) -> Tensor:
        return self.entropy_bottleneck.medians()

    def _pad(self, x: Tensor) -> tuple[Tensor, tuple[int, int]]:
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.PAD, (-w) % self.PAD
        # Replicate padding codes cheaper than zeros; the decoder crops it away.
        return F.pad(x, (0, pw, 0, ph), mode="replicate"), (h, w)

    @property
    def y_stride(self) -> int:
        """Pixels per latent of ``y`` on each side (``z`` is 4x coarser: ``PAD`` pixels)."""
        return self.PAD // 4

    def _analysis_latents(self, x: Tensor, q: int) -> tuple[Tensor, Tensor]:
        """x ``[1,3,H,W]`` (padded) -> the continuous, gained ``y [1,M,h,w]`` and ``z``."""
        y = self._analysis_y(x, q)
        return y, self._hyper_analysis(y, q)

    def _analysis_y(self, x: Tensor, q: int) -> Tensor:
        """x ``[1,3,H,W]`` (padded) -> the continuous, gained ``y [1,M,H/s,W/s]``."""
        return self.g_a(x) * self._gains(torch.tensor([q]))[0]

    def _hyper_analysis(self, y: Tensor, q: int) -> Tensor:
        """Gained ``y [1,M,h,w]`` (h, w multiples of 4) -> continuous, gained ``z [1,N,h/4,w/4]``."""
        return self.h_a(y) * self._gains(torch.tensor([q]))[2]

    def _eval_forward(self, x: Tensor, q: Tensor) -> dict:
        """The exact quantized pass, image by image (each may have its own quality)."""
        outs = [self._eval_latents(*self._analysis_latents(x[i : i + 1], int(q[i])), int(q[i]))
                for i in range(x.shape[0])]
        return {"x_hat": torch.cat([o["x_hat"] for o in outs]),
                "likelihoods": {k: torch.cat([o["likelihoods"][k] for o in outs])
                                for k in ("y", "z")}}

    def _eval_latents(self, y: Tensor, z: Tensor, q: int, synthesis: bool = True) -> dict:
        """``{"x_hat", "likelihoods"}`` of the exact pass (``x_hat`` None without ``synthesis``)."""
        raise NotImplementedError

    @torch.no_grad()
    def coded_likelihoods(self, x: Tensor, q: int) -> dict[str, Tensor]:
        """The likelihoods ``{"y", "z"}`` of the values the codec writes for one padded image
        ``x [1,3,H,W]`` at quality ``q``, without the synthesis (the most costly part of
        the exact pass): what validation needs for its bit estimate."""
        return self._eval_latents(*self._analysis_latents(x, q), q, synthesis=False)["likelihoods"]

    def _analysis(self, x: Tensor, q: int) -> tuple[Tensor, Tensor, Tensor]:
        """x ``[1,3,H,W]`` (padded) -> ``y`` (gained), ``z_hat`` and the likelihoods of ``z``."""
        y, z = self._analysis_latents(x, q)
        z_hat, z_lik = self.entropy_bottleneck(z, training=False)
        return y, z_hat, z_lik

    def relaxed_pass(self, y: Tensor, z: Tensor, q: int, quantize: Relaxation
                     ) -> tuple[Tensor, dict[str, Tensor]]:
        """The differentiable pass that encoder-side refinement optimises: ``y [1,M,h,w]``
        and ``z`` (continuous, gained) quantized by ``quantize(v, center)`` (around the means
        for ``y``, the medians for ``z``), likelihoods of exactly those values (no rounding
        inside, so the rate keeps its gradient). Returns the padded ``x_hat [1,3,H,W]`` and
        the likelihoods ``{"y", "z"}``. Architectures without it cannot be refined."""
        raise NotImplementedError(f"{type(self).__name__} has no relaxed pass")

    @torch.no_grad()
    def decompress(self, streams: list[bytes], z_shape: tuple[int, int], q: int,
                   out_hw: tuple[int, int]) -> Tensor:
        """Inverse of ``compress``; returns float ``[1,3,H,W]`` in [0,1] cropped to ``out_hw``
        (the whole-image path; the file codec decodes through codecs/image/tiling.py)."""
        h, w = out_hw
        y_hat = self.decompress_latents(streams, z_shape, q)
        return self._decode_synthesis(y_hat, q).clamp(0, 1)[..., :h, :w]

    def decompress_latents(self, streams: list[bytes], z_shape: tuple[int, int], q: int
                           ) -> Tensor:
        """The streams of ``compress_latents`` -> float32 ``y_hat [1,M,4*zh,4*zw]`` (one
        tile; ``tiling.decompress_tiles`` runs several :meth:`latent_decoder` side by side)."""
        return dispatch.decode_lockstep([self.latent_decoder(streams, z_shape, q)])[0]

    def latent_decoder(self, streams: list[bytes], z_shape: tuple[int, int], q: int,
                       nets: Any = None) -> StreamDecoder:
        """:meth:`decompress_latents` as a stream decoder (see ``dispatch.decode_lockstep``):
        yields each stream's ``(bytes, indexes, tables)`` in order, is sent its symbols and
        returns ``y_hat``. ``nets``: :meth:`entropy_nets`, shared by the tiles of an image."""
        raise NotImplementedError

    def entropy_nets(self) -> Any:
        """What the decoders of one image's tiles may share instead of each building it (the
        float64 copies of the entropy model's networks); ``None`` when nothing."""
        return None

    def _synthesis(self, y_hat: Tensor, q: int) -> Tensor:
        """The synthesis in the model's float precision (what training sees; the coder
        uses :meth:`_decode_synthesis`)."""
        _, ig, _, _ = self._gains(torch.tensor([q]))
        return self.g_s(y_hat * ig)

    def _decode_synthesis(self, y_hat: Tensor, q: int) -> Tensor:
        """The decoder's synthesis: ``y_hat [1,M,h,w]`` (before the inverse gain) -> float32
        ``x_hat [1,3,H,W]`` on ``y_hat``'s device, padded and unclamped.

        Integer-exact (:mod:`neurocodec.transforms.exact`, on the CPU, any thread count) when
        ``g_s`` has an exact form, so the pixels are the same on every machine; otherwise
        (the GDN stacks) float64 on one thread on the CPU: independent of the thread count,
        not guaranteed across CPUs (docs/determinism.md)."""
        with torch.no_grad():
            syn = self._cached_decoder_synthesis()
            if isinstance(syn, ExactSynthesis):
                x = syn(y_hat, q)
            else:
                with single_thread():
                    ig = self._inv_gain64(q)
                    x = syn(y_hat.detach().cpu().double() * ig).float()
        return x.to(y_hat.device)

    def _inv_gain64(self, q: int) -> Tensor:
        """float64 CPU ``[1,M,1,1]``: the inverse gain of quality ``q``, computed as the exact
        synthesis computes it."""
        return exact_exp(self.log_inv_gain[q])[None, :, None, None]

    def _cached_decoder_synthesis(self) -> nn.Module:
        """The exact (or float64) copy of ``g_s``, rebuilt when a parameter it depends on
        changes (new tensor or in-place update: ``data_ptr`` and ``_version``)."""
        params = [*self.g_s.parameters(), self.log_inv_gain]
        key = tuple((p.data_ptr(), p._version) for p in params)
        cache = self.__dict__.get("_decoder_synthesis")
        if cache is None or cache[0] != key:
            try:
                syn: nn.Module = ExactSynthesis(self.g_s, self.log_inv_gain)
            except UnsupportedModule:
                syn = copy.deepcopy(self.g_s).to("cpu", torch.float64).eval()
            cache = (key, syn)
            self.__dict__["_decoder_synthesis"] = cache
        return cache[1]

    # ------------------------------------------------------------------ tables
    def build_z_tables(self, precision: int = 16) -> CdfTables:
        """Freeze the factorized prior of ``z`` into integer tables (stored with the weights)."""
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
    def table_scales(self) -> np.ndarray:
        return default_scale_table(self.scale_bound, 256.0, 64)

    @property
    def y_tables(self) -> CdfTables:
        if self._y_tables is None:
            self._y_tables = gaussian_tables(self.table_scales)
        return self._y_tables

    # ------------------------------------------------------------------ z coding
    def _encode_z(self, z_hat: Tensor, lanes: int = 32) -> bytes:
        """z_hat ``[1,N,h,w]`` (rounded around the medians) -> one rANS stream."""
        if self.z_tables is None:
            raise RuntimeError("z tables missing: call build_z_tables() or load shipped weights")
        z_sym = torch.round(z_hat - self._z_medians()).to(torch.int32).cpu().numpy()
        return dispatch.encode(z_sym.ravel(), channel_index(z_sym.shape), self.z_tables, lanes=lanes)

    def _z_decoder(self, data: bytes, z_shape: tuple[int, int], kernel: bool = False
                   ) -> StreamDecoder:
        """Inverse of :meth:`_encode_z`, as a stream decoder (``yield from`` it): asks for
        ``data`` with the z tables, returns ``z_hat [1,N,h,w]`` on the model's device.
        ``kernel``: the indexes on the device, for the Triton kernel (symbols stay there)."""
        dev = self._z_medians().device
        zs = (1, self.entropy_bottleneck.channels, *z_shape)
        zi = channel_index(zs)
        if kernel:
            zi = torch.from_numpy(zi.copy()).to(dev)
        z_sym = yield data, zi, self.z_tables
        return torch.as_tensor(z_sym, device=dev).reshape(zs).float() + self._z_medians()
