"""Registry of shipped models: each is ``neurocodec/weights/<name>.safetensors`` plus a
``<name>.json`` manifest (codec, medium, config, training command, data, hours)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from neurocodec.errors import ModelError

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
# Extra model folders (os.pathsep-separated) searched before the shipped ones.
WEIGHTS_ENV = "NEUROCODEC_WEIGHTS"
DEFAULT_IMAGE_MODEL = "hyperprior-vr"
# Manifest "codec" values served by neurocodec.codecs.image.codec.ImageCodec (its ARCHS).
IMAGE_CODECS = ("hyperprior", "mlic")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    codec: str
    medium: str
    qualities: list[int]
    params: int
    training_command: str
    training_hours: float
    data: str
    weights_path: Path

    def to_json(self) -> dict:
        return {"name": self.name, "codec": self.codec, "medium": self.medium,
                "qualities": self.qualities, "params": self.params,
                "training_command": self.training_command,
                "training_hours": self.training_hours, "data": self.data,
                "weights": self.weights_path.name}


def _info(manifest: Path) -> ModelInfo:
    m = json.loads(manifest.read_text())
    return ModelInfo(name=m["name"], codec=m["codec"], medium=m["medium"],
                     qualities=list(m["qualities"]), params=int(m["params"]),
                     training_command=m["training_command"],
                     training_hours=float(m["training_hours"]), data=m["data"],
                     weights_path=manifest.with_suffix(".safetensors"))


def model_dirs() -> list[Path]:
    extra = [Path(d) for d in os.environ.get(WEIGHTS_ENV, "").split(os.pathsep) if d]
    return [*extra, WEIGHTS_DIR]


def list_models() -> list[ModelInfo]:
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


def load_codec(name: str = DEFAULT_IMAGE_MODEL):
    """The ready-to-use codec object for a shipped model."""
    info = get_model_info(name)
    if info.codec in IMAGE_CODECS:
        from neurocodec.codecs.image.codec import ImageCodec

        return ImageCodec.from_info(info)
    raise ModelError(f"model {name!r} uses codec {info.codec!r}, which this build lacks")
