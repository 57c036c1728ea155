"""Validation on held-out images with the real entropy coder: actual file sizes, not only the
likelihood estimate, and the quality of what the decoder really returns."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch import nn

from neurocodec.codecs.container import Container
from neurocodec.codecs.image.io import to_tensor
from neurocodec.datasets.images import list_images, load_rgb
from neurocodec.errors import InputError
from neurocodec.eval.metrics import ms_ssim, psnr
from neurocodec.train.archs import Arch
from neurocodec.train.losses import bits_per_pixel


def load_val_images(root: str | Path) -> list[np.ndarray]:
    """uint8 ``[H, W, 3]`` images of a validation folder."""
    images = [load_rgb(p) for p in list_images(root)]
    if not images:
        raise InputError(f"{root}: no validation images")
    return images


@torch.no_grad()
def validate(model: nn.Module, arch: Arch, images: list[np.ndarray],
             qualities: list[int]) -> list[dict]:
    """One row per quality: totals over ``images`` of pixels and file bytes (container
    included), ``bpp`` = 8·bytes/pixels, ``bpp_est`` from the likelihoods, and mean PSNR /
    MS-SSIM of the decoded 8-bit images.

    Works on a CPU copy of ``model`` (unwrapped from DDP) with freshly built tables, so the
    training model, its device and its random state are left as they were."""
    coder = copy.deepcopy(model).cpu().eval()
    coder.build_z_tables()
    codec = arch.codec(coder, "validation", "")
    rows = []
    for q in qualities:
        nbytes = pixels = 0
        bits_est, psnrs, ssims = 0.0, [], []
        for img in images:
            data = codec.encode(img, q)
            dec = codec.decode(Container.from_bytes(data))
            h, w, _ = img.shape
            nbytes, pixels = nbytes + len(data), pixels + h * w
            psnrs.append(psnr(img, dec))
            ssims.append(ms_ssim(img, dec))
            bits_est += _estimated_bits(coder, img, q)
        rows.append({"quality": q, "lmbda": coder.cfg.lmbdas[q], "images": len(images),
                     "pixels": pixels, "bytes": nbytes, "bpp": 8.0 * nbytes / pixels,
                     "bpp_est": bits_est / pixels, "psnr": float(np.mean(psnrs)),
                     "ms_ssim": float(np.mean(ssims))})
    return rows


def _estimated_bits(model: nn.Module, img: np.ndarray, q: int) -> float:
    """Bits the likelihoods predict for ``img`` coded as the codec does (replicate-padded to
    ``model.PAD``, rounded latents)."""
    x, _ = model._pad(to_tensor(img))
    return float(bits_per_pixel(model.coded_likelihoods(x, q), 1)[0])
