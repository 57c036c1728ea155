"""The one registry: codec name -> codec, of any medium, and medium name -> its files.

Two kinds of codec register here, the same way for every medium:

* **model families** (``register_family``): codecs defined by shipped weights. A model is
  ``<name>.safetensors`` plus a ``<name>.json`` manifest (family in its ``codec`` field,
  medium, qualities, training command, data, hours) in ``neurocodec/weights/`` or a folder of
  ``NEUROCODEC_WEIGHTS``; the family's loader turns the manifest into a :class:`Codec`.
* **standalone codecs** (``register_codec``): codecs without shipped weights — an implicit
  neural representation whose weights are the file, a parametric splat coder.

Each medium package (:data:`PLUGINS`) registers its media, families and codecs in its
``register(registry)`` the first time the registry is asked anything, so listing the zoo does
not import torch. After one registration a codec is listed by ``neurocodec zoo list``, reachable
by ``encode --codec``, decodable by the name in a file's header, and measurable by ``bench``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from neurocodec.codecs.base import Codec, Medium
from neurocodec.codecs.container import Container
from neurocodec.errors import BitstreamError, InputError, ModelError

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
# Extra model folders (os.pathsep-separated) searched before the shipped ones.
WEIGHTS_ENV = "NEUROCODEC_WEIGHTS"
# The medium packages; each has ``register(registry_module)``.
PLUGINS = ("neurocodec.codecs.image", "neurocodec.codecs.video", "neurocodec.codecs.splat")


@dataclass(frozen=True)
class ModelInfo:
    """A shipped (or user-supplied) weights file and its manifest."""

    name: str
    codec: str  # the family
    medium: str
    qualities: list[int]
    params: int
    training_command: str
    training_hours: float
    data: str
    weights_path: Path
    manifest: dict = field(default_factory=dict, compare=False)

    def to_json(self) -> dict:
        return {"name": self.name, "codec": self.codec, "medium": self.medium,
                "qualities": self.qualities, "params": self.params,
                "training_command": self.training_command,
                "training_hours": self.training_hours, "data": self.data,
                "weights": self.weights_path.name}


@dataclass(frozen=True)
class CodecEntry:
    """One row of ``zoo list``: enough to list, pick and load a codec."""

    name: str
    medium: str
    family: str
    qualities: list[int]
    load: Callable[[], Codec] = field(compare=False, repr=False)
    default: bool = False  # the medium's default codec (set by list_codecs)
    info: ModelInfo | None = None
    description: str = ""

    def to_json(self) -> dict:
        base = {"name": self.name, "codec": self.family, "medium": self.medium,
                "qualities": self.qualities, "default": self.default,
                "description": self.description}
        if self.info is None:
            return {**base, "params": 0, "training_command": "", "training_hours": 0.0,
                    "data": "", "weights": None}
        return {**self.info.to_json(), **base}


@dataclass(frozen=True)
class Family:
    medium: str
    load: Callable[[ModelInfo], Codec]


_MEDIA: dict[str, Medium] = {}
_FAMILIES: dict[str, Family] = {}
_CODECS: dict[str, CodecEntry] = {}
_DEFAULTS: dict[str, str] = {}  # medium -> default codec name
_plugins_loaded = False


# --- registration (called by the medium packages) ----------------------------------------

def register_medium(medium: Medium, default_codec: str) -> None:
    _MEDIA[medium.name] = medium
    _DEFAULTS[medium.name] = default_codec


def register_family(family: str, medium: str, load: Callable[[ModelInfo], Codec]) -> None:
    _FAMILIES[family] = Family(medium, load)


def register_codec(entry: CodecEntry) -> None:
    if entry.name in _CODECS:
        raise ValueError(f"codec {entry.name!r} registered twice")
    _CODECS[entry.name] = entry


def _ensure_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    import sys

    me = sys.modules[__name__]
    for mod in PLUGINS:
        importlib.import_module(mod).register(me)


# --- media -------------------------------------------------------------------------------

def media() -> dict[str, Medium]:
    _ensure_plugins()
    return dict(_MEDIA)


def get_medium(name: str) -> Medium:
    m = media()
    if name not in m:
        raise InputError(f"unknown medium {name!r} (this build has: {', '.join(sorted(m))})")
    return m[name]


def medium_for_path(path: str | Path) -> Medium:
    """The medium whose reader takes this file (by extension)."""
    for m in media().values():
        if m.handles(path):
            return m
    exts = ", ".join(e for m in media().values() for e in m.read_exts)
    raise InputError(f"{path}: unsupported input extension {Path(path).suffix or '(none)'!r} "
                     f"(expected one of {exts})")


# --- shipped models ----------------------------------------------------------------------

def _info(manifest: Path) -> ModelInfo:
    try:
        m = json.loads(manifest.read_text())
        return ModelInfo(name=m["name"], codec=m["codec"], medium=m["medium"],
                         qualities=[int(q) for q in m["qualities"]], params=int(m["params"]),
                         training_command=m["training_command"],
                         training_hours=float(m["training_hours"]), data=m["data"],
                         weights_path=manifest.with_suffix(".safetensors"), manifest=m)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelError(f"{manifest}: not a model manifest ({e.__class__.__name__}: {e})"
                         ) from None


def model_dirs() -> list[Path]:
    extra = [Path(d) for d in os.environ.get(WEIGHTS_ENV, "").split(os.pathsep) if d]
    return [*extra, WEIGHTS_DIR]


def list_models() -> list[ModelInfo]:
    """Every weights file with a manifest, first folder first (a user folder can shadow a
    shipped name)."""
    found: dict[str, ModelInfo] = {}
    for d in model_dirs():
        for p in sorted(d.glob("*.json")):
            if p.with_suffix(".safetensors").exists():
                info = _info(p)
                found.setdefault(info.name, info)
    return list(found.values())


def get_model_info(name: str) -> ModelInfo:
    for m in list_models():
        if m.name == name:
            return m
    known = ", ".join(m.name for m in list_models()) or "none"
    raise ModelError(f"unknown model {name!r} (shipped: {known})")


@lru_cache(maxsize=16)
def weights_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


# --- the one table -----------------------------------------------------------------------

def _model_entry(info: ModelInfo) -> CodecEntry:
    fam = _FAMILIES.get(info.codec)

    def load() -> Codec:
        if fam is None:
            raise ModelError(f"model {info.name!r} uses codec {info.codec!r}, which this build "
                             f"lacks (known: {', '.join(sorted(_FAMILIES))})")
        return fam.load(info)

    return CodecEntry(name=info.name, medium=info.medium, family=info.codec,
                      qualities=info.qualities, load=load,
                      default=_DEFAULTS.get(info.medium) == info.name, info=info,
                      description=f"{info.params / 1e6:.2f}M params, "
                                  f"{info.training_hours:.1f} h training")


def list_codecs(medium: str | None = None) -> list[CodecEntry]:
    """Every registered codec (shipped models, then standalone codecs), optionally of one
    medium."""
    _ensure_plugins()
    rows = [_model_entry(i) for i in list_models()]
    names = {r.name for r in rows}
    rows += [replace(c, default=_DEFAULTS.get(c.medium) == c.name) for c in _CODECS.values()
             if c.name not in names]
    return [r for r in rows if medium is None or r.medium == medium]


def get_entry(name: str, medium: str | None = None) -> CodecEntry:
    rows = list_codecs()
    for r in rows:
        if r.name == name:
            if medium is not None and r.medium != medium:
                fits = ", ".join(c.name for c in rows if c.medium == medium) or "none"
                raise InputError(f"{name} is a {r.medium} codec, not a {medium} codec "
                                 f"({medium} codecs: {fits})")
            return r
    known = ", ".join(r.name for r in rows) or "none"
    raise ModelError(f"unknown codec {name!r} (known: {known})")


def default_codec(medium: str) -> str:
    get_medium(medium)
    if medium not in _DEFAULTS:
        raise ModelError(f"no default {medium} codec in this build")
    return _DEFAULTS[medium]


def _load(entry: CodecEntry, cache: dict[str, Codec] | None) -> Codec:
    if cache is None:
        return entry.load()
    if entry.name not in cache:
        cache[entry.name] = entry.load()
    return cache[entry.name]


def load_codec(name: str | None = None, medium: str = "image",
               cache: dict[str, Codec] | None = None) -> Codec:
    """The ready-to-use codec registered as ``name`` (default: the medium's default).
    ``cache``: codecs already loaded, by name, filled as codecs load (a batch passes one dict
    to every call so each model loads once per process)."""
    return _load(get_entry(name or default_codec(medium)), cache)


def codec_for(container: Container, cache: dict[str, Codec] | None = None) -> Codec:
    """The codec that decodes a file, from the model name in its header (``cache``: as in
    :func:`load_codec`)."""
    try:
        entry = get_entry(container.model)
    except ModelError as e:
        raise BitstreamError(f"file needs model {container.model!r}: {e}") from None
    if entry.medium != container.medium or entry.family != container.codec:
        raise BitstreamError(f"file says {container.medium}/{container.codec}/"
                             f"{container.model}, but {entry.name} is a {entry.medium} codec "
                             f"of family {entry.family}")
    return _load(entry, cache)
