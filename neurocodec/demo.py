"""`make demo`: encode and decode the bundled Kodak image with the default shipped model, and
fit, encode and decode the bundled short clip with the default video codec (HNeRV), and code
the bundled small splat scene with the splat coder (quality = render PSNR over orbit views)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from neurocodec.codecs.container import Container, read_file, write_atomic
from neurocodec.codecs.image.io import read_image, write_image
from neurocodec.codecs.registry import load_codec
from neurocodec.eval.metrics import bpp, psnr

SAMPLE = Path(__file__).resolve().parent / "data" / "kodim23.png"
CLIP = Path(__file__).resolve().parent / "data" / "clip_8f_64x64.y4m"
# 4,000 Gaussians nearest the centre of the Luma AI seal capture (MIT; ../shared/data SOURCES)
SCENE = Path(__file__).resolve().parent / "data" / "seal_4k.ply"


def main(qualities: tuple[int, ...] = (3, 6)) -> None:
    img, _ = read_image(SAMPLE)
    t = time.perf_counter()
    codec = load_codec()  # the image default
    codec.decode(Container.from_bytes(codec.encode(img[:64, :64].copy(), 0)))  # JIT warm-up
    print(f"model {codec.name} loaded and warmed up in {time.perf_counter() - t:.2f} s; "
          f"sample {SAMPLE.name} {img.shape[1]}x{img.shape[0]}")
    with tempfile.TemporaryDirectory() as d:
        for q in qualities:
            ncb, png = Path(d) / f"q{q}.ncb", Path(d) / f"q{q}.png"
            t0 = time.perf_counter()
            write_atomic(ncb, codec.encode(img, q))
            t1 = time.perf_counter()
            rec = codec.decode(Container.from_bytes(read_file(ncb)))
            write_image(png, rec)
            t2 = time.perf_counter()
            size = ncb.stat().st_size
            print(f"q={q}: {size} bytes  {bpp(size, img.shape):.4f} bpp  "
                  f"PSNR {psnr(img, rec):.2f} dB  encode {t1 - t0:.2f} s  decode {t2 - t1:.2f} s")



def video(params: str = "12k", epochs: int = 60) -> None:
    """The clip: encoding fits the INR (a short training run), decoding runs its decoder."""
    from neurocodec.codecs.video.io import read_video
    from neurocodec.eval.metrics import video_metrics

    clip, meta = read_video(CLIP)
    codec = load_codec(medium="video")
    t0 = time.perf_counter()
    data = codec.encode(clip, codec.default_quality, meta, params=params, epochs=epochs,
                        progress="off")
    t1 = time.perf_counter()
    rec = codec.decode(Container.from_bytes(data))
    t2 = time.perf_counter()
    m = video_metrics(clip, rec)
    t, h, w, _ = clip.shape
    print(f"clip {CLIP.name} ({t} frames {w}x{h}), {codec.name} {params} params, {epochs} "
          f"epochs: {len(data)} bytes  {8 * len(data) / (t * h * w):.4f} bpp  PSNR "
          f"{m['psnr-rgb']:.2f} dB  fit+encode {t1 - t0:.1f} s  decode {t2 - t1:.2f} s "
          f"({t / (t2 - t1):.0f} frames/s)")



def splat(qualities: tuple[int, ...] = (2, 5), views: int = 4) -> None:
    """The scene at two qualities: bytes, bits per Gaussian, render PSNR, times."""
    from neurocodec.codecs.splat import render as R
    from neurocodec.codecs.splat.io import read_scene

    scene = read_scene(SCENE)
    codec = load_codec(medium="splat")
    cams = R.orbit_cameras(scene, views, 256, 256)
    ref = R.render_views(scene, cams)
    ply = SCENE.stat().st_size
    for q in qualities:
        t0 = time.perf_counter()
        data = codec.encode(scene, q)
        t1 = time.perf_counter()
        rec = codec.decode(Container.from_bytes(data))
        t2 = time.perf_counter()
        m = R.render_quality(scene, rec, cams, reference_views=ref)
        print(f"scene {SCENE.name} ({scene.n} Gaussians, PLY {ply} bytes), {codec.name} q={q}: "
              f"{len(data)} bytes ({ply / len(data):.1f}x smaller)  "
              f"{8 * len(data) / scene.n:.1f} bits/Gaussian  render PSNR {m['psnr']:.2f} dB "
              f"over {views} views  encode {t1 - t0:.2f} s  decode {t2 - t1:.2f} s")


if __name__ == "__main__":
    main()
    video()
    splat()
