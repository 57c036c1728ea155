"""Our shipped image models seen through the baselines' interface, so the runner treats
learned and classical codecs alike. Sizes are whole ``.ncb`` containers."""

from __future__ import annotations

from neurocodec.errors import InputError
from neurocodec.eval.baselines import ALIASES, BASELINES, Baseline, get_baseline


def learned_baseline(name: str) -> Baseline:
    from neurocodec.codecs.container import Container
    from neurocodec.codecs.registry import get_model_info, load_codec

    codec = load_codec(name)
    info = get_model_info(name)
    return Baseline(
        name=name,
        description=(f"neurocodec {name} ({info.params} params, {info.training_hours:.2f} h of "
                     f"training on 2 CPU cores, weights {codec.digest}); sizes are whole .ncb "
                     "files"),
        qualities=tuple(codec.qualities), knob=None,
        encode=lambda img, q: codec.encode(img, int(q)),
        decode=lambda b, shape: codec.decode(Container.from_bytes(b)))


def resolve_image_codec(name: str) -> Baseline:
    """A classical baseline (or alias) by name, else a shipped model by exact name or by the
    unique model whose name starts with ``name`` (``hyperprior`` → ``hyperprior-vr``)."""
    from neurocodec.codecs.registry import list_models

    if name in BASELINES or name in ALIASES:
        return get_baseline(name)
    models = [m.name for m in list_models() if m.medium == "image"]
    matches = [m for m in models if m == name] or [m for m in models if m.startswith(name)]
    if len(matches) != 1:
        known = ", ".join([*BASELINES, *models])
        raise InputError(f"unknown or ambiguous image codec {name!r} (known: {known})")
    return learned_baseline(matches[0])
