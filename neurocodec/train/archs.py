"""The architectures the trainer can build, by name.

A trainable image model is an ``nn.Module`` with

* ``cfg``: a dataclass config with ``lmbdas`` (one per quality) and ``to_dict()``;
* ``forward(x [B,3,H,W] in [0,1], q long [B]) -> {"x_hat": [B,3,H,W], "likelihoods": {name: [B,...]}}``;
* ``aux_loss() -> scalar`` for its factorized priors (parameters named ``*quantiles``);
* ``PAD``: H and W are padded to a multiple of it for ``forward``;
* ``num_qualities``; and for real coding, the file-level codec of :class:`Arch` and a
  ``build_z_tables()`` that freezes its priors into integer tables.

The trainable architectures are exactly the image codec's
(:data:`neurocodec.codecs.image.codec.ARCHS`): adding a model there makes it trainable,
exportable and decodable at once.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from torch import nn

from neurocodec.codecs.image.codec import ARCHS as IMAGE_ARCHS
from neurocodec.codecs.image.codec import ImageCodec
from neurocodec.errors import InputError
from neurocodec.train.config import TrainConfig
from neurocodec.train.losses import default_lmbdas
from neurocodec.transforms.blockdct import COEFFS


@dataclass(frozen=True)
class Arch:
    config: type  # dataclass of the model's hyper-parameters
    model: type  # model(config) -> nn.Module with the interface above
    codec: type  # codec(model, name, digest): .encode(uint8 [H,W,3], q) -> bytes, .decode(Container)


ARCHS: dict[str, Arch] = {name: Arch(cfg, model, ImageCodec)
                          for name, (cfg, model) in IMAGE_ARCHS.items()}


def get_arch(name: str) -> Arch:
    if name not in ARCHS:
        raise InputError(f"unknown arch {name!r} (known: {', '.join(sorted(ARCHS))})")
    return ARCHS[name]


def model_config(cfg: TrainConfig):
    """The arch's config from the TrainConfig: the fields both have, then ``model_args``."""
    arch = get_arch(cfg.arch)
    names = {f.name for f in fields(arch.config)}
    kw = {k: getattr(cfg, k) for k in ("N", "M", "transform") if k in names}
    if kw.get("M") == 0:  # the dct transform's fixed width, else the arch's default
        if kw.get("transform") == "dct":
            kw["M"] = COEFFS
        else:
            del kw["M"]
    lmbdas = cfg.lmbdas or default_lmbdas(cfg.loss)
    if lmbdas:
        kw["lmbdas"] = tuple(lmbdas)
    unknown = sorted(set(cfg.model_args) - names)
    if unknown:
        raise InputError(f"model_args: {cfg.arch} has no field(s) {', '.join(unknown)}")
    return arch.config(**{**kw, **cfg.model_args})


def build_model(cfg: TrainConfig) -> nn.Module:
    try:
        return get_arch(cfg.arch).model(model_config(cfg))
    except ValueError as e:  # an impossible shape (e.g. --transform dct --M 128)
        raise InputError(f"{cfg.arch}: {e}") from None


def model_from_checkpoint(arch: str, model_cfg: dict) -> nn.Module:
    """An untrained model shaped like the one a checkpoint's ``model_cfg`` describes."""
    a = get_arch(arch)
    kw = dict(model_cfg)
    if "lmbdas" in kw:
        kw["lmbdas"] = tuple(kw["lmbdas"])
    return a.model(a.config(**kw))
