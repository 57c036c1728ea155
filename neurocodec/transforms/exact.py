"""Integer-exact execution of synthesis transforms, in float64 (design: docs/determinism.md).

A compiled network works on *integer-valued* float64 tensors. Every activation is an integer
count of ``2^-frac_bits`` clamped to ``±limit`` (``limit = 2^(range_bits + frac_bits)``), every
weight of a layer an integer count of ``2^-w_bits`` (``w_bits`` chosen per layer from its
weights) and every bias an integer count of ``2^-(w_bits + frac_bits)``. ``w_bits`` is chosen so
that, per output, ``sum |w_int| * limit + |b_int| < 2^52``; then every partial sum of a
convolution is an integer below ``2^53``, exactly representable, so the result is the same
whatever the summation order: thread count, BLAS, ISA (``ATEN_CPU_CAPABILITY``), CPU vendor,
tiling. The other operations are single correctly rounded IEEE operations (multiply, add,
round half to even, clamp), which are deterministic too. Clamping every activation (also the
input) makes this hold for any input, including crafted files.

Supported modules: ``nn.Sequential``, ``nn.Conv2d``, ``nn.ConvTranspose2d`` (zero padding,
no dilation), ``nn.LeakyReLU`` and the DCT-start synthesis of
:mod:`neurocodec.transforms.blockdct` (``_Residual``, ``DctSynthesis``). Anything else raises
:class:`UnsupportedModule`.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurocodec.determinism import single_thread
from neurocodec.transforms.blockdct import DctSynthesis, _Residual

ACC_LIMIT = 1 << 52  # bound on |accumulator|; float64 holds every integer below 2^53
W_BITS_MAX = 32  # finer weight grids buy nothing at frac_bits = 18
W_BITS_MIN = 8  # below this the weights lose too much precision to call the model the same
# Elements of a stage's widest activation per tile: 512 kB in float64 (its im2col 9x that), so
# 64 x 64-pixel tiles for the post-filter (16 channels), 18 x 18 latents for the refinement.
TILE_ELEMS = 1 << 16


class UnsupportedModule(TypeError):
    """The module (or one inside it) has no exact form."""


class ExactnessError(ValueError):
    """A layer's weights cannot meet the accumulator bound at a useful precision."""


@dataclass(frozen=True)
class Grid:
    """The activation grid: multiples of ``2^-frac_bits`` in ``[-2^range_bits, 2^range_bits]``.

    The shipped DCT synthesis peaks at ~5 in magnitude on Kodak, so ``range_bits=6`` never
    clamps a real image; ``range_bits + frac_bits = 24`` makes every activation exactly
    representable in float32 as well (the output is returned as float32 without rounding)."""

    frac_bits: int = 18
    range_bits: int = 6

    @property
    def limit(self) -> int:
        """Largest activation magnitude, in grid units."""
        return 1 << (self.frac_bits + self.range_bits)

    @property
    def scale(self) -> float:
        """Grid units per unit value (``2^frac_bits``)."""
        return float(1 << self.frac_bits)


class ExactOp(nn.Module):
    """One compiled operation on integer-valued float64 ``[B, C, H, W]`` grid tensors.

    ``scale``: output rows (and columns) per input row, or None when the output is not an
    integer multiple of the input (strided convolutions): such ops cannot be tiled. ``halo``:
    input rows (and columns) of context each side that the outputs of a tile need."""

    scale: int | None = 1
    halo: int = 0

    def __init__(self, grid: Grid):
        super().__init__()
        self.grid = grid

    def clamp(self, a: Tensor) -> Tensor:
        return a.clamp_(-self.grid.limit, self.grid.limit)


class ExactConv(ExactOp):
    """``Conv2d`` / ``ConvTranspose2d`` on grid tensors.

    ``weight``: integers, ``[C_out, C_in/groups, kh, kw]`` (``[C_in, C_out/groups, kh, kw]`` when
    ``transposed``) in units of ``2^-w_bits``; ``bias``: integers ``[C_out]`` in units of
    ``2^-(w_bits + frac_bits)``. The accumulator is rescaled onto the activation grid with
    one exact multiply by ``2^-w_bits`` and a round half to even."""

    def __init__(self, layer: nn.Conv2d | nn.ConvTranspose2d, grid: Grid):
        super().__init__(grid)
        if layer.padding_mode != "zeros" or tuple(layer.dilation) != (1, 1):
            raise UnsupportedModule(f"{layer}: only zero padding and no dilation")
        if isinstance(layer.padding, str):
            raise UnsupportedModule(f"{layer}: string padding")
        self.transposed = isinstance(layer, nn.ConvTranspose2d)
        self.stride, self.padding = tuple(layer.stride), tuple(layer.padding)
        self.groups = layer.groups
        self.output_padding = tuple(layer.output_padding) if self.transposed else (0, 0)
        w = layer.weight.detach().cpu().double()
        b = None if layer.bias is None else layer.bias.detach().cpu().double()
        self.w_bits, wi, bi = _quantize_layer(w, b, self.transposed, self.stride, grid)
        self.register_buffer("weight", wi)
        self.register_buffer("bias", bi)
        self.scale, self.halo = _geometry(layer.kernel_size, self.stride, self.padding,
                                          self.output_padding, self.transposed)

    def forward(self, a: Tensor) -> Tensor:
        if self.transposed:
            acc = F.conv_transpose2d(a, self.weight, self.bias, self.stride, self.padding,
                                     self.output_padding, self.groups)
        else:
            acc = F.conv2d(a, self.weight, self.bias, self.stride, self.padding, 1, self.groups)
        return self.clamp(acc.mul_(2.0 ** -self.w_bits).round_())


class ExactLeakyReLU(ExactOp):
    """``x if x >= 0 else round(slope * x)``: one rounded multiply, then back on the grid."""

    def __init__(self, slope: float, grid: Grid):
        super().__init__(grid)
        self.slope = slope

    def forward(self, a: Tensor) -> Tensor:
        return F.leaky_relu(a, self.slope).round_()  # x >= 0: x; else one rounded multiply


class ExactAddConst(ExactOp):
    """``x + c`` with ``c`` rounded onto the grid (``c = 0.5`` is exact)."""

    def __init__(self, value: float, grid: Grid):
        super().__init__(grid)
        self.units = float(round(value * grid.scale))

    def forward(self, a: Tensor) -> Tensor:
        return self.clamp(a + self.units)


class ExactResidual(ExactOp):
    """``x + branch(x)`` (``branch`` keeps the shape)."""

    def __init__(self, branch: ExactOp, grid: Grid):
        super().__init__(grid)
        if branch.scale != 1:
            raise UnsupportedModule("a residual branch must keep the resolution")
        self.branch, self.halo = branch, branch.halo

    def forward(self, a: Tensor) -> Tensor:
        return self.clamp(a + self.branch(a))


class ExactSequential(ExactOp):
    def __init__(self, ops: Sequence[ExactOp], grid: Grid):
        super().__init__(grid)
        self.ops = nn.ModuleList(ops)
        scale: int | None = 1
        halo = 0
        for op in reversed(self.ops):  # context of the later ops, seen through the earlier
            halo = op.halo + (-(-halo // op.scale) if op.scale else 0)
            scale = None if scale is None or op.scale is None else scale * op.scale
        self.scale, self.halo = scale, halo

    def forward(self, a: Tensor) -> Tensor:
        for op in self.ops:
            a = op(a)
        return a


def compile_exact(module: nn.Module, grid: Grid | None = None) -> ExactOp:
    """The exact form of ``module`` (its weights copied and quantized, float64 CPU).

    Raises :class:`UnsupportedModule` for a module without one and :class:`ExactnessError`
    for weights that cannot meet the accumulator bound."""
    grid = grid or Grid()
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        return ExactConv(module, grid)
    if isinstance(module, nn.LeakyReLU):
        return ExactLeakyReLU(module.negative_slope, grid)
    if isinstance(module, nn.Sequential):
        return ExactSequential([compile_exact(m, grid) for m in module], grid)
    if isinstance(module, _Residual):
        # mirrors _Residual.forward: x + b(leaky_relu(a(x), 0.1))
        branch = [compile_exact(module.a, grid), ExactLeakyReLU(0.1, grid),
                  compile_exact(module.b, grid)]
        return ExactResidual(ExactSequential(branch, grid), grid)
    if isinstance(module, DctSynthesis):
        # mirrors DctSynthesis.forward: x0 = idct(refine(y)) + 0.5; x0 + post(x0)
        return ExactSequential([compile_exact(module.refine, grid),
                                compile_exact(module.idct, grid), ExactAddConst(0.5, grid),
                                ExactResidual(compile_exact(module.post, grid), grid)], grid)
    raise UnsupportedModule(f"no exact form for {type(module).__name__}")


def exact_exp(v: Tensor) -> Tensor:
    """float64 ``exp(v)`` elementwise, independent of the CPU and of torch: ``decimal``'s
    correctly rounded exp (software), then one correctly rounded conversion to float64.
    For small tables (the inverse gains), not for activations."""
    ctx = decimal.Context(prec=40)
    flat = [float(ctx.exp(decimal.Decimal(float(x)))) for x in v.detach().cpu().double().flatten()]
    return torch.tensor(flat, dtype=torch.float64).reshape(v.shape)


class ExactSynthesis(nn.Module):
    """A synthesis transform with per-quality input gains, executed exactly.

    ``__call__(y_hat [1, M, h, w], q) -> x_hat [1, 3, H, W]``: float32 on the CPU (every value
    a multiple of ``2^-frac_bits``), bit-identical on any CPU for the same ``y_hat``.
    ``y_hat * inv_gain[q]`` is put on the grid with one correctly rounded float64 multiply;
    ``inv_gain = exp(log_inv_gain)`` comes from :func:`exact_exp`.

    The network runs in *stages* (a new one after each upsampling layer: the DCT synthesis
    is ``refine, idct`` at latent resolution, then ``+0.5, post-filter`` at pixel resolution),
    each in tiles of about ``tile_elems`` elements of its widest activation (plus the halo its
    convolutions need) spread over the torch threads, one thread per tile. Small tiles keep
    the float64 working set in cache and bound the memory for any image size; the arithmetic
    being exact, the tiled result equals the untiled one bit for bit. ``tile_elems=None``:
    no tiling, the ops use the torch threads themselves."""

    def __init__(self, g_s: nn.Module, log_inv_gain: Tensor, grid: Grid | None = None,
                 tile_elems: int | None = TILE_ELEMS):
        super().__init__()
        self.grid = grid or Grid()
        self.net = compile_exact(g_s, self.grid)
        self.stages = nn.ModuleList(_stages(self.net))
        self.tiles = [None if tile_elems is None or st.scale is None
                      else max(8, math.isqrt(tile_elems // _widest(st))) for st in self.stages]
        self.register_buffer("inv_gain", exact_exp(log_inv_gain))  # [Q, M]

    def quantize_input(self, y_hat: Tensor, q: int) -> Tensor:
        """float ``[1, M, h, w]`` -> grid tensor (NaN -> 0, +-inf and overflow clamped)."""
        ig = self.inv_gain[q][None, :, None, None]
        v = (y_hat.detach().cpu().double() * ig) * self.grid.scale  # second multiply exact
        v = torch.nan_to_num(v, nan=0.0, posinf=self.grid.limit, neginf=-self.grid.limit)
        return torch.round(v).clamp_(-self.grid.limit, self.grid.limit)

    @torch.no_grad()
    def forward(self, y_hat: Tensor, q: int) -> Tensor:
        a = self.quantize_input(y_hat, q)
        workers = torch.get_num_threads()
        for stage, tile in zip(self.stages, self.tiles):
            a = stage(a) if tile is None else run_tiled(stage, a, tile, workers)
        return (a * (1.0 / self.grid.scale)).float()  # exact: at most 24 significant bits

    @property
    def bandable(self) -> bool:
        """Whether :meth:`bands` can run (the whole network has an integer scale)."""
        return self.net.scale is not None

    @torch.no_grad()
    def bands(self, y_hat: Tensor, q: int, rows: int) -> Iterator[tuple[int, Tensor]]:
        """``forward(y_hat, q)`` in horizontal bands of ``rows`` latent rows, each computed
        from its rows plus the network's halo: yields ``(first output row, float32
        [1, 3, rows * scale, W])``. The arithmetic being exact, the bands are the rows of
        ``forward``'s result bit for bit, while the float64 working set is one band's."""
        if not self.bandable:
            raise ValueError("this synthesis cannot run in bands (no integer scale)")
        s, halo, h = self.net.scale, self.net.halo, y_hat.shape[-2]
        for r0 in range(0, h, max(1, rows)):
            r1 = min(r0 + max(1, rows), h)
            ra, rb = max(r0 - halo, 0), min(r1 + halo, h)
            x = self.forward(y_hat[..., ra:rb, :], q)
            yield r0 * s, x[..., (r0 - ra) * s : (r1 - ra) * s, :]


def run_tiled(op: ExactOp, a: Tensor, tile: int, workers: int = 1) -> Tensor:
    """``op(a)`` computed on ``tile x tile`` blocks of ``a [B, C, H, W]``, each with ``op.halo``
    positions of context (zero padding only at the true image edges), on ``workers`` threads
    with one torch thread each. The interior of each tile's output depends only on its exact
    inputs, so the result equals ``op(a)`` bit for bit."""
    s, h = op.scale, op.halo
    if s is None:
        raise ValueError("op cannot be tiled (its output is not a multiple of its input)")
    H, W = a.shape[-2:]
    boxes = [(r0, min(r0 + tile, H), c0, min(c0 + tile, W))
             for r0 in range(0, H, tile) for c0 in range(0, W, tile)]

    def run(box: tuple[int, int, int, int]) -> Tensor:
        r0, r1, c0, c1 = box
        ra, rb, ca, cb = max(r0 - h, 0), min(r1 + h, H), max(c0 - h, 0), min(c1 + h, W)
        t = op(a[..., ra:rb, ca:cb])
        if t.shape[-2:] != ((rb - ra) * s, (cb - ca) * s):
            raise ValueError(f"op output {tuple(t.shape)} is not {s}x its input")
        return t[..., (r0 - ra) * s : (r1 - ra) * s, (c0 - ca) * s : (c1 - ca) * s]

    with single_thread():  # intra-op threads would fight over tiles this small
        first = run(boxes[0])
        out = first.new_empty(*first.shape[:2], H * s, W * s)

        def place(box: tuple[int, int, int, int], t: Tensor) -> None:
            r0, r1, c0, c1 = box
            out[..., r0 * s : r1 * s, c0 * s : c1 * s] = t

        def work(box: tuple[int, int, int, int]) -> None:
            place(box, run(box))

        place(boxes[0], first)
        if workers > 1 and len(boxes) > 1:
            with ThreadPoolExecutor(workers, initializer=torch.set_num_threads,
                                    initargs=(1,)) as pool:
                list(pool.map(work, boxes[1:]))  # list(): re-raises a worker's exception
        else:
            for box in boxes[1:]:
                work(box)
    return out


def _stages(net: ExactOp) -> list[ExactOp]:
    """``net`` cut after each upsampling op (tiles of each stage are sized in its own units)."""
    if not isinstance(net, ExactSequential):
        return [net]
    stages: list[list[ExactOp]] = [[]]
    for op in net.ops:
        stages[-1].append(op)
        if op.scale != 1:
            stages.append([])
    return [ExactSequential(ops, net.grid) for ops in stages if ops]


def _widest(op: ExactOp) -> int:
    """The most channels of any activation inside ``op`` (sizes its tiles)."""
    convs = [m for m in op.modules() if isinstance(m, ExactConv)]
    chans = [max(c.weight.shape[0], c.weight.shape[1] * c.groups) for c in convs]
    return max([1, *chans])


# ---------------------------------------------------------------------- helpers
def _abs_sum_per_output(w: Tensor, transposed: bool, stride: tuple[int, int]) -> Tensor:
    """``[C_out]``: the largest ``sum |w|`` over the weights that meet in one output (in
    ``w``'s dtype). A transposed convolution's output sees the kernel taps of one stride
    phase only."""
    if not transposed:
        return w.abs().sum(dim=(1, 2, 3))
    sh, sw = stride
    phases = [w[:, :, i::sh, j::sw].abs().sum(dim=(0, 2, 3)) for i in range(sh)
              for j in range(sw)]
    return torch.stack(phases).amax(0)


def _quantize_layer(w: Tensor, b: Tensor | None, transposed: bool, stride: tuple[int, int],
                    grid: Grid) -> tuple[int, Tensor, Tensor | None]:
    """The finest ``w_bits`` (at most W_BITS_MAX) meeting the bound, and the integer weight and
    bias. The bound is checked in Python integers, so the check itself is exact."""
    if not (torch.isfinite(w).all() and (b is None or torch.isfinite(b).all())):
        raise ExactnessError("non-finite weights")
    for w_bits in range(W_BITS_MAX, W_BITS_MIN - 1, -1):
        wi = torch.round(w * 2.0**w_bits)
        bi = None if b is None else torch.round(b * 2.0 ** (w_bits + grid.frac_bits))
        if wi.abs().max() >= ACC_LIMIT or (bi is not None and bi.abs().max() >= ACC_LIMIT):
            continue
        sums = _abs_sum_per_output(wi.long(), transposed, stride).tolist()  # int64: exact
        bias = [0] * len(sums) if bi is None else [abs(int(x)) for x in bi.long().tolist()]
        if max(s * grid.limit + c for s, c in zip(sums, bias)) < ACC_LIMIT:
            return w_bits, wi, bi
    raise ExactnessError(f"weights too large for an exact accumulator at {W_BITS_MIN} "
                         f"fractional bits (max sum |w| = "
                         f"{float(_abs_sum_per_output(w, transposed, stride).max()):.3g}, "
                         f"activations up to 2^{grid.range_bits})")


def _geometry(kernel: tuple[int, ...], stride: tuple[int, int], padding: tuple[int, int],
              output_padding: tuple[int, int], transposed: bool) -> tuple[int | None, int]:
    """(scale, halo) of a convolution, or (None, 0) when its output size is not ``scale``
    times its input (then it cannot be tiled). Square geometry only, as in every model here."""
    k, s, p = kernel[0], stride[0], padding[0]
    if len(set(kernel)) != 1 or len(set(stride)) != 1 or len(set(padding)) != 1:
        return None, 0
    if not transposed:
        return (1, p) if s == 1 and 2 * p == k - 1 else (None, 0)
    if k - 2 * p + output_padding[0] != s:
        return None, 0
    # output o sums inputs i with 0 <= o + p - i*s <= k - 1
    left = max(0, (k - 1 - p) // s)
    right = max(0, math.floor((p - 1) / s) + 1)
    return s, max(left, right)
