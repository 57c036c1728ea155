"""Large images in bounded memory (codecs/image/tiling.py): entropy tiles that the decoder
repeats exactly, banded analysis and bit-exact banded synthesis."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from neurocodec.codecs.container import Container
from neurocodec.codecs.image import codec as image_codec
from neurocodec.codecs.image import tiling
from neurocodec.codecs.image.io import to_tensor, to_uint8
from neurocodec.codecs.image.refine import RefineConfig
from neurocodec.codecs.registry import load_codec
from neurocodec.errors import BitstreamError, InputError
from neurocodec.eval.metrics import psnr

KODIM23 = Path(tiling.__file__).parents[2] / "data" / "kodim23.png"


@cache
def photo() -> np.ndarray:
    """768x512 photo, cropped to 700x450 (not a multiple of the padding)."""
    return np.asarray(Image.open(KODIM23).convert("RGB"))[:450, :700].copy()


@pytest.fixture
def small_tiles(monkeypatch):
    """Entropy tiles of 256 pixels, so a 700x450 image is 3x2 tiles."""
    monkeypatch.setattr(image_codec, "tile_for", lambda h, w: 256 if max(h, w) > 256 else None)


def test_tile_boxes_cover_the_grid_once():
    boxes = tiling.tile_boxes(5, 9, 4)
    assert boxes == [(0, 4, 0, 4), (0, 4, 4, 8), (0, 4, 8, 9), (4, 5, 0, 4), (4, 5, 4, 8),
                     (4, 5, 8, 9)]
    seen = np.zeros((5, 9), int)
    for r0, r1, c0, c1 in boxes:
        seen[r0:r1, c0:c1] += 1
    assert (seen == 1).all()
    assert tiling.tile_for(1024, 1024) is None and tiling.tile_for(1025, 8) == tiling.ENTROPY_TILE


def test_padded_rows_equal_padding_the_whole_image():
    img = photo()[:77, :53]
    whole = torch.nn.functional.pad(to_tensor(img), (0, 11, 0, 19), mode="replicate")
    for ra, rb in [(0, 96), (40, 96), (64, 90), (0, 30)]:
        torch.testing.assert_close(tiling.padded_rows(img, ra, rb, 96, 64), whole[..., ra:rb, :],
                                   rtol=0, atol=0)


def test_banded_analysis_matches_the_whole_image():
    model = load_codec("hyperprior-vr3").model
    img = photo()
    x = model._pad(to_tensor(img))[0]
    with torch.no_grad():
        whole = model._analysis_y(x, 2)
        banded = tiling.analysis_y(model, img, 2, band_pixels=64 * 704)  # bands of 64 rows
    assert banded.shape == whole.shape
    torch.testing.assert_close(banded, whole, rtol=0, atol=1e-4)


def test_banded_synthesis_is_bit_exact():
    model = load_codec("hyperprior-vr3").model
    torch.manual_seed(0)
    y_hat = torch.round(torch.randn(1, 192, 13, 17) * 4)
    whole = to_uint8(model._decode_synthesis(y_hat, 3).clamp(0, 1)[..., :100, :130])
    for band in (192 * 17, 192 * 17 * 5, 10**9):  # bands of 1, 5 and all latent rows
        banded = tiling.synthesize_uint8(model, y_hat, 3, (100, 130), band_elems=band)
        np.testing.assert_array_equal(banded, whole)


@pytest.mark.parametrize("name", ["hyperprior-vr3", "mlic-vr"])
def test_tiled_files_decode_as_their_encoder_coded_them(small_tiles, name):
    codec = load_codec(name)
    img = photo() if name.startswith("hyperprior") else photo()[:300, :520]
    data = codec.encode(img, 2)
    c = Container.from_bytes(data)
    h, w = img.shape[:2]
    tiles = len(tiling.z_tiles(tuple(c.meta["z_shape"]), 256, codec.model.PAD))
    assert c.meta["tile"] == 256 and tiles == (-(-h // 256)) * (-(-w // 256))
    assert len(c.sections) == tiles * codec.model.num_streams
    out = codec.decode(c)
    assert out.shape == img.shape and out.dtype == np.uint8
    # The same image as one tile: tiles cost a little rate near their edges, nothing in
    # quality (the synthesis sees the whole y_hat).
    whole = codec.decode(Container.from_bytes(one := load_codec(name).encode(img, 2)))
    p_tiled, p_whole = psnr(img, out), psnr(img, whole)
    assert abs(p_tiled - p_whole) < 0.1, (p_tiled, p_whole)
    assert len(data) < 1.06 * len(one), (len(data), len(one))
    assert codec.decode(Container.from_bytes(data)).tobytes() == out.tobytes()  # deterministic


@pytest.mark.parametrize("name", ["hyperprior-vr3", "mlic-vr"])
def test_tiles_decode_side_by_side_in_batches(small_tiles, monkeypatch, name):
    """The tiles of a group decode in lockstep, each round's streams in one batch call; the
    picture is the one tile-by-tile decoding gives."""
    from neurocodec.entropy import rans

    codec = load_codec(name)
    img = photo()[:300, :520]  # 2 x 3 tiles
    c = Container.from_bytes(codec.encode(img, 1))
    sizes: list[int] = []
    real = rans.decode_batch

    def counting(streams, indexes, tables):
        sizes.append(len(streams))
        return real(streams, indexes, tables)

    monkeypatch.setattr(rans, "decode_batch", counting)
    grouped = codec.decode(c)
    k = codec.model.num_streams
    g = tiling.DECODE_GROUP
    assert g > 1 and sizes == [len(range(i, min(i + g, 6))) for i in range(0, 6, g) for _ in range(k)]
    sizes.clear()
    monkeypatch.setattr(tiling, "DECODE_GROUP", 1)
    alone = codec.decode(c)
    assert sizes == [1] * (6 * k)
    assert grouped.tobytes() == alone.tobytes()


def test_tile_headers_are_checked(small_tiles):
    codec = load_codec("hyperprior-vr3")
    c = Container.from_bytes(codec.encode(photo(), 1))
    for tile, match in [(96, "meta.tile"), (300, "multiple of 32"), (True, "meta.tile"),
                        (512, "sections")]:
        bad = Container.from_bytes(c.to_bytes())
        bad.meta["tile"] = tile
        with pytest.raises(BitstreamError, match=match):
            codec.decode(bad)
    untiled = Container.from_bytes(c.to_bytes())
    del untiled.meta["tile"]
    with pytest.raises(BitstreamError, match="sections"):
        codec.decode(untiled)


def test_refine_of_a_tiled_image_is_refused(small_tiles):
    with pytest.raises(InputError, match="--refine works on images up to 256"):
        load_codec("hyperprior-vr3").encode(photo(), 1, refine=RefineConfig(steps=2))


CHILD = """
import sys
import numpy as np
from neurocodec.codecs.container import Container
from neurocodec.codecs.registry import load_codec
codec = load_codec("hyperprior-vr3")
codec.band_elems = 1 << 18  # bands of 2 MB: what is left is what grows with the image
c = Container.from_bytes(open(sys.argv[1], "rb").read())
if sys.argv[2] == "decode":
    out = codec.decode(c)
    np.save(sys.argv[1] + ".npy", out)
print(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
"""


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/status"), reason="needs VmHWM")
def test_decoding_a_tiled_image_holds_tens_of_bytes_per_pixel(tmp_path, small_tiles):
    """Peak RSS of a decoding process grows by ~15 bytes per pixel (y_hat in float32, the
    uint8 output) once tiles and bands are small; the whole-image path grew by ~220. The
    slope between two sizes leaves out what does not grow (interpreter, model, workspaces)."""
    import os
    import subprocess
    import sys

    root = str(Path(tiling.__file__).parents[3])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    codec = load_codec("hyperprior-vr3")
    src = Image.open(KODIM23).convert("RGB")

    def peak(w: int, h: int) -> int:
        img = np.asarray(src.resize((w, h), Image.LANCZOS))
        f = tmp_path / f"{w}x{h}.ncb"
        f.write_bytes(codec.encode(img, 1))
        r = subprocess.run([sys.executable, "-c", CHILD, str(f), "decode"], env=env,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        assert psnr(img, np.load(str(f) + ".npy")) > 30
        return int(r.stdout.split()[-1]) * 1024

    small, big = peak(800, 600), peak(1600, 1200)
    per_pixel = (big - small) / (1600 * 1200 - 800 * 600)
    assert per_pixel < 50, per_pixel
