"""Image folders held in memory, sampled as random crops with flips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".ppm", ".webp", ".bmp", ".tif", ".tiff"}


def list_images(root: str | Path) -> list[Path]:
    """All image files below ``root`` (recursively), sorted for reproducibility."""
    return sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in IMAGE_EXTS)


class CropSampler:
    """Random ``crop x crop`` patches from a folder of photos, kept in RAM as uint8.

    Each photo is kept at full size and downscaled by 2 (area filter): half-size copies are
    cleaner (less sensor noise and JPEG blocking) and closer to the statistics of typical
    test sets, full-size copies keep fine texture in the mix.
    """

    def __init__(self, root: str | Path, crop: int = 256, seed: int = 0, half_scale: bool = True):
        self.crop = crop
        self.images: list[np.ndarray] = []
        for p in list_images(root):
            im = Image.open(p).convert("RGB")
            if min(im.size) >= crop:
                self.images.append(np.asarray(im))
            if half_scale:
                half = im.resize((im.width // 2, im.height // 2), Image.BOX)
                if min(half.size) >= crop:
                    self.images.append(np.asarray(half))
        if not self.images:
            raise ValueError(f"no image of at least {crop}x{crop} pixels under {root}")
        self.rng = np.random.default_rng(seed)

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state

    def batch(self, n: int) -> torch.Tensor:
        """float ``[n,3,crop,crop]`` in [0,1]."""
        out = np.empty((n, self.crop, self.crop, 3), dtype=np.uint8)
        for i in range(n):
            im = self.images[self.rng.integers(len(self.images))]
            y = self.rng.integers(im.shape[0] - self.crop + 1)
            x = self.rng.integers(im.shape[1] - self.crop + 1)
            patch = im[y : y + self.crop, x : x + self.crop]
            if self.rng.random() < 0.5:
                patch = patch[:, ::-1]
            out[i] = patch
        return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)
