"""Registered codecs (shipped models, standalone codecs) seen through the baselines'
interface, so the runner treats learned and classical codecs of any medium alike. Sizes are
whole ``.ncb`` containers."""

from __future__ import annotations

from collections.abc import Callable

from neurocodec.errors import InputError
from neurocodec.eval.baselines import ALIASES, BASELINES, Baseline, get_baseline


def learned_baseline(name: str, options: dict | None = None) -> Baseline:
    """A registered codec as a baseline; ``options`` go to its ``encode`` (a video INR's
    ``epochs``), except ``qualities``, which restricts the measured qualities."""
    from neurocodec.codecs.container import Container
    from neurocodec.codecs.registry import get_entry

    entry = get_entry(name)
    codec = entry.load()
    options = dict(options or {})
    qualities = options.pop("qualities", None) or codec.qualities
    for q in qualities:
        codec.check_quality(q)
    if entry.info is not None:
        what = (f"{entry.info.params} params, {entry.info.training_hours:.2f} h of training on "
                f"2 CPU cores, weights {codec.digest}")
    else:
        what = f"{entry.description}, config {codec.digest}"
    if options:  # part of the description: the bench's cache re-measures when they change
        what += ", options " + ", ".join(f"{k}={v}" for k, v in sorted(options.items()))
    return Baseline(
        name=name, description=f"neurocodec {name} ({what}); sizes are whole .ncb files",
        qualities=tuple(qualities), knob=None,
        encode=lambda item, q: codec.encode(item, int(q), **options),
        decode=lambda b, shape: codec.decode(Container.from_bytes(b)))


def resolve_codec(name: str, medium: str, classical: dict[str, Callable[[], Baseline]],
                  get_classical: Callable[[str], Baseline], aliases: dict | None = None,
                  options: dict | None = None) -> Baseline:
    """A classical baseline of ``medium`` (or alias) by name, else a registered codec of that
    medium by exact name, or by the unique name starting with ``name``, or, when several do,
    the medium's default among them (``hyperprior`` → ``hyperprior-vr6``)."""
    from neurocodec.codecs.registry import list_codecs

    if name in classical or name in (aliases or {}):
        return get_classical(name)
    rows = list_codecs(medium)
    ours = [c.name for c in rows]
    matches = [m for m in ours if m == name] or [m for m in ours if m.startswith(name)]
    default = [c.name for c in rows if c.default and c.name in matches]
    if len(matches) > 1 and default:  # "hyperprior" → the default of the hyperprior models
        matches = default
    if len(matches) != 1:
        known = ", ".join([*classical, *ours])
        raise InputError(f"unknown or ambiguous {medium} codec {name!r} (known: {known})")
    return learned_baseline(matches[0], (options or {}).get(name))


def resolve_image_codec(name: str, options: dict | None = None) -> Baseline:
    """``options``: codec name -> its encode options (see :func:`learned_baseline`)."""
    return resolve_codec(name, "image", BASELINES, get_baseline, ALIASES, options)


def resolve_video_codec(name: str, options: dict | None = None) -> Baseline:
    from neurocodec.eval.video_baselines import VIDEO_BASELINES, get_video_baseline

    return resolve_codec(name, "video", VIDEO_BASELINES, get_video_baseline, options=options)


def resolve_splat_codec(name: str, options: dict | None = None) -> Baseline:
    from neurocodec.eval.splat_baselines import SPLAT_BASELINES, get_splat_baseline

    return resolve_codec(name, "splat", SPLAT_BASELINES, get_splat_baseline, options=options)
