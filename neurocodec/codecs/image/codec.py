"""File-level image codec: uint8 RGB image <-> container bytes, through a shipped model.

One wrapper serves every image architecture in :data:`ARCHS`; the weights file names its
architecture in its metadata (``arch``; files without it are hyperprior models).
"""

from __future__ import annotations

import json

import numpy as np
import torch
from safetensors.torch import load_file, save

from neurocodec.codecs.base import Codec, reject_options
from neurocodec.codecs.container import Container, write_atomic
from neurocodec.codecs.image.base import VariableRateImageModel, load_compatible
from neurocodec.codecs.image.hyperprior import HyperpriorConfig, ScaleHyperprior
from neurocodec.codecs.image.io import to_tensor
from neurocodec.codecs.image.mlic import MLICConfig, MLICModel
from neurocodec.codecs.image.refine import RefineConfig, refine_latents
from neurocodec.codecs.image.tiling import (
    MIN_TILE,
    SYNTHESIS_BAND_ELEMS,
    compress_tiled,
    decompress_tiles,
    synthesize_uint8,
    tile_for,
    z_tiles,
)
from neurocodec.codecs.limits import (
    DEFAULT_LIMITS,
    DecodeLimits,
    check_int,
    check_int_list,
    check_pixels,
)
from neurocodec.codecs.registry import ModelInfo, weights_digest
from neurocodec.entropy import rans
from neurocodec.entropy.tables import CdfTables
from neurocodec.errors import BitstreamError, InputError, ModelError

MAX_SIDE = 1 << 15
# arch name (= the model's codec_name, the container's codec field) -> (config, model) classes
ARCHS: dict[str, tuple[type, type[VariableRateImageModel]]] = {
    "hyperprior": (HyperpriorConfig, ScaleHyperprior),
    "mlic": (MLICConfig, MLICModel),
}


def save_weights(model: VariableRateImageModel, path) -> None:
    """fp16 weights plus the integer z tables; the config and arch ride in the metadata."""
    if model.z_tables is None:
        model.build_z_tables()
    t = model.z_tables
    tensors = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    tensors["z_tables.cdf"] = torch.from_numpy(t.cdf.astype(np.int32))
    tensors["z_tables.lengths"] = torch.from_numpy(t.lengths.astype(np.int32))
    tensors["z_tables.offsets"] = torch.from_numpy(t.offsets.astype(np.int32))
    # Through write_atomic: the umask's mode (safetensors' own writer leaves 0600) and never a
    # half-written weights file.
    write_atomic(path, save(tensors, metadata={"config": json.dumps(model.cfg.to_dict()),
                                               "z_precision": str(t.precision),
                                               "arch": model.codec_name}), force=True)


def load_weights(path) -> VariableRateImageModel:
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata()
        tensors = load_file(str(path))
        cfg = json.loads(meta["config"])
    except Exception as e:  # a damaged weights file is a model problem, not a crash
        raise ModelError(f"{path}: cannot load weights ({e})") from None
    arch = meta.get("arch", "hyperprior")
    if arch not in ARCHS:
        raise ModelError(f"{path}: unknown image architecture {arch!r}")
    cfg["lmbdas"] = tuple(cfg["lmbdas"])
    cfg_cls, model_cls = ARCHS[arch]
    model = model_cls(cfg_cls(**cfg))
    z = CdfTables(cdf=tensors.pop("z_tables.cdf").numpy(),
                  lengths=tensors.pop("z_tables.lengths").numpy(),
                  offsets=tensors.pop("z_tables.offsets").numpy(),
                  precision=int(meta["z_precision"]))
    try:
        load_compatible(model, {k: v.float() for k, v in tensors.items()})
    except (KeyError, RuntimeError) as e:
        raise ModelError(f"{path}: weights do not fit the model ({e})") from None
    model.z_tables = z
    return model.eval()


class ImageCodec(Codec):
    """Encode/decode whole images with a variable-rate image model (any of :data:`ARCHS`)."""

    medium = "image"
    # y elements per band of the decoder's synthesis (float64 working set ~8 bytes each)
    band_elems = SYNTHESIS_BAND_ELEMS

    def __init__(self, model: VariableRateImageModel, name: str, digest: str):
        self.model, self.name, self.digest = model, name, digest
        self.family = model.codec_name

    @classmethod
    def from_info(cls, info: ModelInfo) -> ImageCodec:
        return cls(load_weights(info.weights_path), info.name, weights_digest(info.weights_path))

    @property
    def qualities(self) -> list[int]:
        return list(range(self.model.num_qualities))

    def encode(self, img: np.ndarray, quality: int, meta: dict | None = None,
               refine: RefineConfig | None = None, **options) -> bytes:
        """img: uint8 ``[H, W, 3]``. ``refine``: optimise this image's latents before coding
        them (:mod:`neurocodec.codecs.image.refine`); the file decodes as any other.
        ``meta``: extra header fields (the reader's, e.g. ``input_mode``)."""
        reject_options(self, options)
        self.check_quality(quality)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise InputError("image must be uint8 H x W x 3")
        h, w, _ = img.shape
        if max(h, w) > MAX_SIDE:
            raise InputError(f"image {w}x{h} is larger than {MAX_SIDE} pixels on a side")
        tile = tile_for(h, w)
        refining = refine is not None and refine.steps > 0
        if refining and tile is not None:
            raise InputError(f"--refine works on images up to {tile} pixels a side "
                             f"(this one is {w}x{h})")
        if tile is not None:  # entropy tiles: bounded memory (codecs/image/tiling.py)
            streams, z_shape = compress_tiled(self.model, img, quality, tile)
        elif refining:
            r = refine_latents(self.model, to_tensor(img), quality, refine)
            streams, z_shape = r.streams, r.z_shape
        else:
            streams, z_shape = self.model.compress(to_tensor(img), quality)
        tiling = {} if tile is None else {"tile": tile}
        c = Container(codec=self.family, model=self.name, weights=self.digest,
                      shape=[h, w, 3],
                      meta={"quality": quality, "z_shape": list(z_shape), **tiling,
                            **(meta or {})},
                      sections=streams)
        return c.to_bytes()

    def decode(self, c: Container, limits: DecodeLimits | None = None) -> np.ndarray:
        """Returns uint8 ``[H, W, 3]``. Every size the file declares is checked against
        ``limits`` (default :data:`~neurocodec.codecs.limits.DEFAULT_LIMITS`) and against the
        others before any network runs; see :meth:`check`."""
        h, w, q, zs, tile = self.check(c, limits or DEFAULT_LIMITS)
        y_hat = decompress_tiles(self.model, c.sections, zs, q, tile)
        return synthesize_uint8(self.model, y_hat, q, (h, w), self.band_elems)

    def check(self, c: Container, limits: DecodeLimits
              ) -> tuple[int, int, int, tuple[int, int], int | None]:
        """Validate ``c`` for this codec without decoding; returns ``(H, W, quality, z_shape,
        tile)`` (``tile``: pixels on a side of the entropy tiles, None for one tile).

        Order: medium, codec/model/weights, shape against :data:`MAX_SIDE` and
        ``limits.max_pixels``, quality, ``z_shape`` against the shape, the tile, the section
        count, then each rANS stream's header (symbol count, precision, lane table) against
        what the shapes imply. Only headers are read, so the cost is independent of declared
        sizes."""
        self.check_container(c)
        h, w, _ = check_int_list(c.shape, "image shape", 3, 1, MAX_SIDE)
        check_int(c.shape[2], "image channel count", 3, 3)
        check_pixels(h, w, limits)
        q = check_int(c.meta.get("quality"), "meta.quality", 0, self.model.num_qualities - 1)
        pad = self.model.PAD
        want = [-(-h // pad), -(-w // pad)]
        zs = check_int_list(c.meta.get("z_shape"), "meta.z_shape", 2, 1, MAX_SIDE)
        if zs != want:
            raise BitstreamError(f"invalid meta.z_shape: {zs} does not fit a {w}x{h} image "
                                 f"(expected {want})")
        tile = c.meta.get("tile")
        if tile is not None:
            check_int(tile, "meta.tile", MIN_TILE, MAX_SIDE)
            if tile % pad:
                raise BitstreamError(f"invalid meta.tile: {tile} (expected a multiple of {pad})")
        tiles = z_tiles((zs[0], zs[1]), tile, pad)
        # Headers are cheap to check, but a file may declare up to (2^15 / MIN_TILE)^2 tiles:
        # count the sections first.
        k = self.model.num_streams
        if len(c.sections) != k * len(tiles):
            raise BitstreamError(f"file has {len(c.sections)} sections, a {w}x{h} {self.name} "
                                 f"image has {k * len(tiles)}")
        counts = [n for r0, r1, c0, c1 in tiles
                  for n in self.model.stream_symbol_counts((r1 - r0, c1 - c0))]
        for i, (data, n) in enumerate(zip(c.sections, counts)):
            tables = self.model.z_tables if i % k == 0 else self.model.y_tables
            try:
                declared = rans.parse_header(data)[2]
                if declared != n:
                    raise BitstreamError(f"rANS stream declares {declared} symbols, the image "
                                         f"shape implies {n}")
                rans.check_stream(data, n, tables)
            except BitstreamError as e:
                raise BitstreamError(f"section {i}: {e}") from None
        return h, w, q, (zs[0], zs[1]), tile


HyperpriorImageCodec = ImageCodec  # the name it had when it served one architecture
