"""Cost of the integer-exact synthesis (docs/determinism.md): decode time of one image with
the float32 synthesis the decoder used before and with the exact one (best of ``--repeat``),
and the PSNR of both decodes on a few Kodak images.

    python benchmarks/exact_decode.py                      # kodim23, both shipped models
    python benchmarks/exact_decode.py --psnr-images kodim01 kodim05 kodim13 kodim23

"before" decodes the same files with ``g_s`` in float32 at the current thread count (the
previous decoder, which varied by a few pixel values between thread counts).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from timing import best_time

from neurocodec.codecs.container import Container
from neurocodec.codecs.image.base import VariableRateImageModel
from neurocodec.codecs.image.io import read_image
from neurocodec.codecs.registry import load_codec
from neurocodec.eval.metrics import psnr

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "images" / "kodak"


def float_synthesis(self: VariableRateImageModel, y_hat: torch.Tensor, q: int) -> torch.Tensor:
    """The decoder's synthesis before exact decoding: the model's float32 ``g_s``."""
    with torch.no_grad():
        return self._synthesis(y_hat, q)


def decode(codec, data: bytes, exact: bool) -> np.ndarray:
    model = codec.model
    if not exact:
        model._decode_synthesis = float_synthesis.__get__(model)
    try:
        return codec.decode(Container.from_bytes(data))
    finally:
        model.__dict__.pop("_decode_synthesis", None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["hyperprior-vr", "mlic-vr"])
    p.add_argument("--image", default="kodim23")
    p.add_argument("--quality", type=int, default=3)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--psnr-images", nargs="*", default=["kodim01", "kodim05", "kodim13",
                                                         "kodim23"])
    p.add_argument("--psnr-qualities", type=int, nargs="*", default=[0, 5])
    p.add_argument("--kodak", type=Path, default=KODAK)
    a = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"ISA {torch.backends.cpu.get_cpu_capability()}")
    for name in a.models:
        codec = load_codec(name)
        img, _ = read_image(a.kodak / f"{a.image}.png")
        data = codec.encode(img, a.quality)
        decode(codec, data, True)  # compile the exact synthesis and JIT the coder once
        t_before, _ = best_time(lambda c=codec, d=data: decode(c, d, False), a.repeat)
        t_after, _ = best_time(lambda c=codec, d=data: decode(c, d, True), a.repeat)
        h, w = img.shape[:2]
        print(f"{name} {a.image} {w}x{h} q{a.quality}: decode float32 {t_before:.3f} s, "
              f"exact {t_after:.3f} s, ratio {t_after / t_before:.2f}")
        diffs = []
        for stem in a.psnr_images:
            img, _ = read_image(a.kodak / f"{stem}.png")
            for q in a.psnr_qualities:
                data = codec.encode(img, q)
                before, after = decode(codec, data, False), decode(codec, data, True)
                pb, pa = psnr(img, before), psnr(img, after)
                changed = int(np.count_nonzero(before != after))
                diffs.append(pa - pb)
                print(f"  {stem} q{q}: PSNR float32 {pb:.4f} dB, exact {pa:.4f} dB, "
                      f"change {pa - pb:+.5f} dB ({changed} of {before.size} values differ)")
        if diffs:
            print(f"  max |PSNR change| {max(abs(d) for d in diffs):.5f} dB, mean "
                  f"{float(np.mean(diffs)):+.5f} dB")


if __name__ == "__main__":
    main()
