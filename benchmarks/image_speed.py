"""Image codec speed: our models beside CompressAI's ``mbt2018_mean`` on the same image.

Whole-file encode (image → bytes) and decode (bytes → image) of one 768x512 image, best of
``--repeat`` runs each, in this process with torch's default threads. CompressAI's model is
its ``mbt2018_mean`` architecture (quality 3 size, N=192, M=192) with random weights and
``update()``d tables — its pretrained weights cannot be downloaded here — so its timings show
the architecture and CompressAI's coder, not a trained model's exact symbol statistics.
Ours: every shipped image model, plus an untrained MLIC (default config) when
``--with-untrained-mlic`` is given. Prints seconds and ratios; ``--json`` writes them.

    python benchmarks/image_speed.py --image ../shared/data/images/kodak/kodim01.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from timing import best_time

from neurocodec.codecs.container import Container
from neurocodec.codecs.image.io import read_image, to_tensor, to_uint8


def time_ours(codec, img: np.ndarray, q: int, repeat: int) -> dict:
    enc, data = best_time(lambda: codec.encode(img, q), repeat)
    dec, rec = best_time(lambda: codec.decode(Container.from_bytes(data)), repeat)
    assert rec.shape == img.shape
    return {"encode_s": enc, "decode_s": dec, "bytes": len(data)}


def time_compressai(img: np.ndarray, repeat: int) -> dict:
    from compressai.zoo import mbt2018_mean

    torch.manual_seed(0)
    net = mbt2018_mean(quality=3, pretrained=False).eval()
    net.update(force=True)
    x = to_tensor(img)

    def enc():
        with torch.no_grad():
            h, w = x.shape[2:]
            ph, pw = -h % 64, -w % 64
            return net.compress(torch.nn.functional.pad(x, (0, pw, 0, ph)))

    def dec(out):
        with torch.no_grad():
            r = net.decompress(out["strings"], out["shape"])["x_hat"]
        return to_uint8(r[..., : x.shape[2], : x.shape[3]])

    e, out = best_time(enc, repeat)
    d, _ = best_time(lambda: dec(out), repeat)
    return {"encode_s": e, "decode_s": d,
            "bytes": sum(len(s[0]) for s in out["strings"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", default=str(Path(__file__).parent.parent / "neurocodec" / "data"
                                          / "kodim23.png"))
    ap.add_argument("--quality", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--with-untrained-mlic", action="store_true")
    ap.add_argument("--json", help="write the measurements here")
    a = ap.parse_args()
    img, _ = read_image(a.image)
    print(f"{a.image}: {img.shape[1]}x{img.shape[0]}, torch threads {torch.get_num_threads()}")
    from neurocodec.codecs.registry import list_models, load_codec

    rows = {"compressai mbt2018_mean (random init)": time_compressai(img, a.repeat)}
    for m in list_models():
        if m.medium == "image":
            rows[m.name] = time_ours(load_codec(m.name), img, a.quality, a.repeat)
    if a.with_untrained_mlic:
        from neurocodec.codecs.image.codec import ImageCodec
        from neurocodec.codecs.image.mlic import MLICModel

        torch.manual_seed(0)
        model = MLICModel().eval()
        model.build_z_tables()
        rows["mlic default config (untrained)"] = time_ours(
            ImageCodec(model, "mlic-untrained", "0" * 16), img, a.quality, a.repeat)
    ref = rows["compressai mbt2018_mean (random init)"]
    print(f"{'codec':40s} {'encode s':>9s} {'decode s':>9s} {'enc ratio':>10s} {'dec ratio':>10s}")
    for name, r in rows.items():
        r["encode_ratio"] = ref["encode_s"] / r["encode_s"]
        r["decode_ratio"] = ref["decode_s"] / r["decode_s"]
        print(f"{name:40s} {r['encode_s']:9.3f} {r['decode_s']:9.3f} "
              f"{r['encode_ratio']:9.2f}x {r['decode_ratio']:9.2f}x")
    print("ratio = CompressAI's time / ours (above 1: ours is faster)")
    if a.json:
        Path(a.json).write_text(json.dumps({"image": a.image, "shape": list(img.shape),
                                            "threads": torch.get_num_threads(), "rows": rows},
                                           indent=1))


if __name__ == "__main__":
    main()
