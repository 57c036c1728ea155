"""Image folders held in memory, sampled as random crops with flips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from neurocodec.errors import InputError

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".ppm", ".webp", ".bmp", ".tif", ".tiff"}


def list_images(root: str | Path) -> list[Path]:
    """All image files below ``root`` (recursively), sorted for reproducibility."""
    if not Path(root).is_dir():
        raise InputError(f"{root}: not a folder of images")
    return sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in IMAGE_EXTS)


def load_rgb(path: str | Path) -> np.ndarray:
    """uint8 ``[H, W, 3]`` as the codecs read it (EXIF orientation, 16 bits scaled); for
    training, the alpha plane of a transparent image is dropped and an animation gives its
    first frame."""
    from neurocodec.codecs.image.io import read_image

    return read_image(path, drop_alpha=True, frame=0)[0]


class CropSampler:
    """Random ``crop x crop`` patches from a folder of photos, kept in RAM as uint8.

    Each photo is kept at full size and downscaled by 2 (area filter): half-size copies are
    cleaner (less sensor noise and JPEG blocking) and closer to the statistics of typical
    test sets, full-size copies keep fine texture in the mix. Patches are flipped left-right
    at random, and upside down too with ``vflip``.
    """

    def __init__(self, root: str | Path, crop: int = 256, seed: int = 0, half_scale: bool = True,
                 vflip: bool = False):
        self.crop, self.vflip = crop, vflip
        self.images: list[np.ndarray] = []
        for p in list_images(root):
            im = Image.fromarray(load_rgb(p))
            if min(im.size) >= crop:
                self.images.append(np.asarray(im))
            if half_scale:
                half = im.resize((im.width // 2, im.height // 2), Image.BOX)
                if min(half.size) >= crop:
                    self.images.append(np.asarray(half))
        if not self.images:
            raise InputError(f"no image of at least {crop}x{crop} pixels under {root}")
        self.rng = np.random.default_rng(seed)

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state

    def batch(self, n: int, rng: np.random.Generator | None = None) -> torch.Tensor:
        """float ``[n,3,crop,crop]`` in [0,1], drawn from ``rng`` (default: the sampler's own)."""
        rng = self.rng if rng is None else rng
        out = np.empty((n, self.crop, self.crop, 3), dtype=np.uint8)
        for i in range(n):
            im = self.images[rng.integers(len(self.images))]
            y = rng.integers(im.shape[0] - self.crop + 1)
            x = rng.integers(im.shape[1] - self.crop + 1)
            patch = im[y : y + self.crop, x : x + self.crop]
            if rng.random() < 0.5:
                patch = patch[:, ::-1]
            if self.vflip and rng.random() < 0.5:
                patch = patch[::-1]
            out[i] = patch
        return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)


class StepBatches(torch.utils.data.Dataset):
    """Item ``step`` is the training batch of that step, float ``[batch,3,crop,crop]``.

    Each batch is drawn from a generator seeded with ``(seed, rank, step)``, so it does not
    depend on the batches before it: a resumed run, any number of DataLoader workers and
    every DDP rank (each its own crops) see exactly the batches of an uninterrupted run.
    """

    def __init__(self, sampler: CropSampler, batch: int, seed: int = 0, rank: int = 0):
        self.sampler, self.batch, self.seed, self.rank = sampler, batch, seed, rank

    def __getitem__(self, step: int) -> torch.Tensor:
        return self.sampler.batch(self.batch, np.random.default_rng([self.seed, self.rank, step]))
