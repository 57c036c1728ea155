"""File-level image codec: uint8 RGB image <-> container bytes, through a shipped model.

One wrapper serves every image architecture in :data:`ARCHS`; the weights file names its
architecture in its metadata (``arch``; files without it are hyperprior models).
"""

from __future__ import annotations

import json

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from neurocodec.codecs.base import Codec, reject_options
from neurocodec.codecs.container import Container
from neurocodec.codecs.image.base import VariableRateImageModel, load_compatible
from neurocodec.codecs.image.hyperprior import HyperpriorConfig, ScaleHyperprior
from neurocodec.codecs.image.io import to_tensor, to_uint8
from neurocodec.codecs.image.mlic import MLICConfig, MLICModel
from neurocodec.codecs.image.refine import RefineConfig, refine_latents
from neurocodec.codecs.registry import ModelInfo, weights_digest
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
    save_file(tensors, str(path), metadata={"config": json.dumps(model.cfg.to_dict()),
                                            "z_precision": str(t.precision),
                                            "arch": model.codec_name})


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

    def __init__(self, model: VariableRateImageModel, name: str, digest: str):
        self.model, self.name, self.digest = model, name, digest
        self.family = model.codec_name

    @property
    def codec_name(self) -> str:
        return self.model.codec_name

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
        x = to_tensor(img)
        if refine is None or refine.steps == 0:
            streams, z_shape = self.model.compress(x, quality)
        else:
            r = refine_latents(self.model, x, quality, refine)
            streams, z_shape = r.streams, r.z_shape
        c = Container(codec=self.codec_name, model=self.name, weights=self.digest,
                      shape=[h, w, 3],
                      meta={"quality": quality, "z_shape": list(z_shape), **(meta or {})},
                      sections=streams)
        return c.to_bytes()

    def decode(self, c: Container, limits=None) -> np.ndarray:
        """Returns uint8 ``[H, W, 3]``."""
        self.check_container(c)
        h, w, ch = c.shape if len(c.shape) == 3 else (0, 0, 0)
        q = c.meta.get("quality")
        zs = c.meta.get("z_shape")
        pad = self.model.PAD
        if (ch != 3 or max(h, w) > MAX_SIDE or q not in self.qualities
                or len(c.sections) != self.model.num_streams
                or zs != [-(-h // pad), -(-w // pad)]):
            raise BitstreamError("corrupted file: inconsistent image header")
        x = self.model.decompress(c.sections, tuple(zs), q, (h, w))
        return to_uint8(x)


HyperpriorImageCodec = ImageCodec  # the name it had when it served one architecture
