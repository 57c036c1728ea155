import os

# Triton kernels run on the CPU through the interpreter in tests; set before triton loads.
os.environ.setdefault("TRITON_INTERPRET", "1")

import json

import numpy as np
import pytest
import torch
from PIL import Image

from neurocodec.codecs.image.codec import save_weights
from neurocodec.codecs.image.hyperprior import HyperpriorConfig, ScaleHyperprior
from neurocodec.codecs.registry import weights_digest

DATA = __import__("pathlib").Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def crop_odd() -> np.ndarray:
    return np.asarray(Image.open(DATA / "kodim19_crop75x53.png").convert("RGB")).copy()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny randomly initialised model registered as 'tiny-test' (not trained)."""
    d = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    m = ScaleHyperprior(HyperpriorConfig(N=8, M=12, lmbdas=(0.01, 0.05))).eval()
    save_weights(m, d / "tiny-test.safetensors")
    (d / "tiny-test.json").write_text(json.dumps({
        "name": "tiny-test", "codec": "hyperprior", "medium": "image", "qualities": [0, 1],
        "params": sum(p.numel() for p in m.parameters()), "training_command": "none (random)",
        "training_hours": 0.0, "data": "none"}))
    weights_digest.cache_clear()
    return d


@pytest.fixture
def tiny_env(tiny_model_dir, monkeypatch):
    monkeypatch.setenv("NEUROCODEC_WEIGHTS", str(tiny_model_dir))
    return tiny_model_dir
