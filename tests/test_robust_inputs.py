"""Odd inputs get a defined behaviour (issue 14): converted as a viewer shows them, or refused
with a one-line error naming the option that allows them; never silently changed."""

from pathlib import Path

import imagecodecs
import numpy as np
import pytest
from PIL import Image

import neurocodec
from neurocodec.api import open_container
from neurocodec.codecs.image.io import read_image
from neurocodec.errors import InputError
from tests.conftest import DATA
from tests.test_cli import run

RAMP = (np.arange(48 * 40).reshape(40, 48) * 34).astype(np.uint16)  # 0..65246


def _one_line_error(capsys, *args) -> str:
    rc, _, err = run(capsys, *args)
    assert rc == 1 and err.startswith("neurocodec: error:") and err.count("\n") == 1, err
    assert "Traceback" not in err and " at 0x" not in err
    return err


def _encode(capsys, src, out, *extra):
    rc, _, err = run(capsys, "encode", src, "-o", out, "--codec", "tiny-test", "-q", 0, *extra)
    assert rc == 0, err
    return out


def test_16_bit_greyscale_png_is_scaled_not_clipped(tmp_path, tiny_env, capsys):
    src = tmp_path / "g16.png"
    Image.fromarray(RAMP).save(src)
    assert Image.open(src).mode == "I;16"
    img, mode = read_image(src)
    assert mode == "I;16" and img.dtype == np.uint8 and img.shape == (40, 48, 3)
    assert np.abs(img[..., 0] - RAMP / 257.0).max() <= 0.5
    assert (img[..., 0] == img[..., 2]).all()
    _encode(capsys, src, tmp_path / "g.ncb")


def test_48_bit_rgb_png_is_scaled(tmp_path):
    src = tmp_path / "rgb48.png"
    rgb = np.stack([RAMP, RAMP[::-1], 65535 - RAMP], -1)
    src.write_bytes(imagecodecs.png_encode(rgb))
    img, _ = read_image(src)
    assert np.abs(img - rgb / 257.0).max() <= 1.0  # Pillow keeps the high byte


def test_exif_orientation_is_applied(tmp_path, tiny_env, capsys):
    src = tmp_path / "o6.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    stored = np.zeros((32, 48, 3), np.uint8)
    stored[:, :8] = 255  # a white band on the stored image's left edge ...
    Image.fromarray(stored).save(src, exif=exif, quality=95)
    img, _ = read_image(src)
    assert img.shape == (48, 32, 3)
    assert img[:8].mean() > 200 and img[-8:].mean() < 50  # ... is on top once displayed
    _encode(capsys, src, tmp_path / "o.ncb")
    assert run(capsys, "decode", tmp_path / "o.ncb", "-o", tmp_path / "o.png")[0] == 0
    assert Image.open(tmp_path / "o.png").size == (32, 48)


def _transparent(tmp_path) -> dict:
    rgba = np.full((24, 32, 4), 200, np.uint8)
    rgba[..., 0] = 17
    rgba[:4, :4, 3] = 0
    files = {"rgba": Image.fromarray(rgba, "RGBA"),
             "la": Image.fromarray(rgba[..., 2:], "LA")}
    pal = Image.fromarray(rgba[..., :3]).quantize(4)
    pal.info["transparency"] = 0
    files["p"] = pal
    for name, im in files.items():
        im.save(tmp_path / f"{name}.png")
    return {name: tmp_path / f"{name}.png" for name in files}


@pytest.mark.parametrize("kind", ["rgba", "la", "p"])
def test_transparency_is_refused_without_drop_alpha(tmp_path, tiny_env, capsys, kind):
    src = _transparent(tmp_path)[kind]
    err = _one_line_error(capsys, "encode", src, "-o", tmp_path / "a.ncb", "--codec", "tiny-test")
    assert "--drop-alpha" in err and "transparen" in err
    assert not (tmp_path / "a.ncb").exists()
    with pytest.raises(InputError, match="--drop-alpha"):
        neurocodec.encode(src, codec="tiny-test")
    _encode(capsys, src, tmp_path / "a.ncb", "--drop-alpha")
    if kind == "rgba":  # the stored colours are kept
        img, _ = read_image(src, drop_alpha=True)
        assert (img[..., 0] == 17).all() and (img[..., 1:] == 200).all()


def test_opaque_alpha_is_not_an_error(tmp_path, tiny_env, capsys):
    src = tmp_path / "opaque.png"
    Image.fromarray(np.full((24, 32, 4), 255, np.uint8), "RGBA").save(src)
    _encode(capsys, src, tmp_path / "a.ncb")
    assert (read_image(src)[0] == 255).all()


def _frames(n=3):
    return [Image.fromarray(np.full((16, 24, 3), 40 + 60 * i, np.uint8)) for i in range(n)]


@pytest.mark.parametrize("name,fmt", [("a.gif", "GIF"), ("a.webp", "WEBP"), ("a.png", "PNG"),
                                      ("gif_renamed.png", "GIF")])
def test_animations_are_refused_without_frame(tmp_path, tiny_env, capsys, name, fmt):
    src = tmp_path / name
    f = _frames()
    f[0].save(src, format=fmt, save_all=True, append_images=f[1:],
              **({"lossless": True} if fmt == "WEBP" else {}))
    err = _one_line_error(capsys, "encode", src, "-o", tmp_path / "a.ncb", "--codec", "tiny-test")
    assert "--frame" in err and "3 frames" in err and "video" in err
    assert not (tmp_path / "a.ncb").exists()
    _encode(capsys, src, tmp_path / "a.ncb", "--frame", 1)
    assert abs(float(read_image(src, frame=1)[0].mean()) - 100) <= 2
    assert open_container(tmp_path / "a.ncb").meta["input_frame"] == 1
    err = _one_line_error(capsys, "encode", src, "-o", tmp_path / "b.ncb", "--codec",
                          "tiny-test", "--frame", 3)
    assert "0..2" in err


def test_api_takes_reader_options(tmp_path, tiny_env):
    src = tmp_path / "a.gif"
    f = _frames()
    f[0].save(src, save_all=True, append_images=f[1:])
    data = neurocodec.encode(src, codec="tiny-test", frame=2)
    assert open_container(data).meta["input_frame"] == 2
    with pytest.raises(InputError, match="frame"):
        neurocodec.encode(np.zeros((16, 16, 3), np.uint8), codec="tiny-test", frame=0)


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "1"])
def test_other_modes_become_rgb(tmp_path, mode):
    src = tmp_path / ("a.jpg" if mode == "CMYK" else "a.png")
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).convert(mode).save(src)
    img, got = read_image(src)
    assert got == mode and img.shape == (16, 16, 3) and img.dtype == np.uint8


@pytest.mark.parametrize("ext", [".bmp", ".tif", ".tiff"])
def test_encode_reads_what_decode_writes(tmp_path, tiny_env, capsys, ext, crop_odd):
    Image.fromarray(crop_odd).save(tmp_path / "in.png")
    _encode(capsys, tmp_path / "in.png", tmp_path / "a.ncb")
    assert run(capsys, "decode", tmp_path / "a.ncb", "-o", tmp_path / f"d{ext}")[0] == 0
    _encode(capsys, tmp_path / f"d{ext}", tmp_path / "b.ncb")


def test_not_an_image_names_no_buffer(tmp_path, tiny_env, capsys):
    (tmp_path / "x.png").write_bytes(b"hello")
    err = _one_line_error(capsys, "encode", tmp_path / "x.png", "-o", tmp_path / "x.ncb")
    assert "BytesIO" not in err and "x.png" in err


# --- outputs ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mask", [0o002, 0o027])
def test_outputs_get_the_mode_the_umask_gives(tmp_path, tiny_env, capsys, crop_odd, mask):
    import os
    import stat

    Image.fromarray(crop_odd).save(tmp_path / "in.png")
    old = os.umask(mask)
    try:
        _encode(capsys, tmp_path / "in.png", tmp_path / "a.ncb")
        assert run(capsys, "decode", tmp_path / "a.ncb", "-o", tmp_path / "d.png")[0] == 0
    finally:
        os.umask(old)
    for f in ("a.ncb", "d.png"):
        assert stat.S_IMODE((tmp_path / f).stat().st_mode) == 0o666 & ~mask, f


def test_output_folder_problems_come_before_any_work(tmp_path, tiny_env, capsys, crop_odd,
                                                     monkeypatch):
    import os

    from neurocodec.codecs import registry

    src = tmp_path / "in.png"
    Image.fromarray(crop_odd).save(src)
    enc = _encode(capsys, src, tmp_path / "a.ncb")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if os.geteuid() == 0:  # root writes anywhere: make the folder unwritable for the check
        access = os.access
        monkeypatch.setattr(os, "access", lambda p, m, **kw: Path(p) != locked
                            and access(p, m, **kw))

    def no_work(*a, **k):
        raise AssertionError("work started before the output was checked")

    monkeypatch.setattr(registry, "load_codec", no_work)
    monkeypatch.setattr(registry, "codec_for", no_work)
    (tmp_path / "adir.png").mkdir()
    cases = [(tmp_path / "nope" / "x.ncb", tmp_path / "nope" / "x.png", "does not exist"),
             (tmp_path / "adir.png", tmp_path / "adir.png", "is a folder"),
             (src / "x.ncb", src / "x.png", "is not a folder"),
             (locked / "x.ncb", locked / "x.png", "not writable")]
    for enc_out, dec_out, why in cases:
        err = _one_line_error(capsys, "encode", src, "-o", enc_out, "--codec", "tiny-test")
        assert why in err and "exists (use" not in err, err
        err = _one_line_error(capsys, "decode", enc, "-o", dec_out)
        assert why in err and "exists (use" not in err, err
    assert list(locked.iterdir()) == []


# --- train misuse ----------------------------------------------------------------------------

TRAIN = ["--N", 8, "--M", 12, "--transform", "gdn", "--crop", 64, "--batch", 1, "--max-steps", 2,
         "--threads", 1, "--progress", "off", "--no-tensorboard"]


@pytest.mark.parametrize("flags,why", [
    (["--budget-minutes", 0], "--budget-minutes"), (["--budget-minutes", -1], "--budget-minutes"),
    (["--batch", 0], "--batch"), (["--lr", 0], "--lr"), (["--lr", -1e-4], "--lr"),
    (["--lr", "nan"], "--lr"), (["--ckpt-every", 0], "--ckpt-every"),
    (["--crop", 16], "multiple of 64"), (["--crop", 96], "multiple of 64"),
    (["--crop", 4096], "4096x4096"), (["--crop", 64, "--data", "TINY"], "64x64")])
def test_train_misuse_is_refused_before_a_run_folder(tmp_path, capsys, flags, why):
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    Image.fromarray(np.full((16, 16, 3), 99, np.uint8)).save(tiny / "a.png")
    flags = [tiny if f == "TINY" else f for f in flags]
    err = _one_line_error(capsys, "train", "image", "--data", DATA, "--out", tmp_path / "r",
                          *TRAIN, *flags)
    assert why in err, err
    assert not (tmp_path / "r").exists()


def test_nan_loss_stops_the_run_and_keeps_the_good_checkpoint(tmp_path, capsys, monkeypatch):
    import torch

    from neurocodec.train import trainer

    calls = []

    def poisoned(*a, **k):  # the 5th step's loss is NaN
        r = rd_loss(*a, **k)
        calls.append(1)
        if len(calls) >= 5:
            r["loss"] = r["loss"] * float("nan")
        return r

    rd_loss = trainer.rd_loss
    monkeypatch.setattr(trainer, "rd_loss", poisoned)
    out = tmp_path / "r"
    err = _one_line_error(capsys, "train", "image", "--data", DATA, "--out", out, *TRAIN,
                          "--max-steps", 8, "--ckpt-every", 2, "--warmup-steps", 1)
    assert "step 5" in err and "not finite" in err and "keeps step 4" in err, err
    st = torch.load(out / "checkpoint.pt", weights_only=True)
    assert st["step"] == 4
    assert all(torch.isfinite(v).all() for v in st["model"].values())


# --- bench -----------------------------------------------------------------------------------

def _bench(tmp_path, data, **kw):
    from neurocodec.eval.bench import BenchConfig, run_bench

    cfg = dict(data=str(data), codecs=("jpeg-420",), out=str(tmp_path / "out"), workers=1,
               progress=False)
    return run_bench(BenchConfig(**{**cfg, **kw}))


def test_bench_skips_and_reports_an_unreadable_image(tmp_path, capsys, crop_odd):
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(crop_odd).save(data / "good.png")
    (data / "bad.png").write_bytes(b"not a png")
    res = _bench(tmp_path, data)
    assert list(res.skipped) == ["bad.png"] and "cannot decode" in res.skipped["bad.png"]
    assert {p["item"] for p in res.results["jpeg-420"]["per_image"]} == {"good.png"}
    rc, out, _ = run(capsys, "bench", "image", "--data", data, "--codecs", "jpeg-420",
                     "--anchor", "jpeg-420", "--out", tmp_path / "cli", "--workers", 2,
                     "--no-progress")
    assert rc == 0 and "bad.png: skipped (" in out
    md = (tmp_path / "cli" / "report.md").read_text()
    assert "## Skipped items" in md and "bad.png" in md
    assert "bad.png" in (tmp_path / "cli" / "report.html").read_text()


def test_bench_cache_keys_on_the_path_below_data(tmp_path, crop_odd):
    data = tmp_path / "data"
    for sub, img in (("x", crop_odd), ("y", crop_odd[::-1, :40])):
        (data / sub).mkdir(parents=True)
        Image.fromarray(np.ascontiguousarray(img)).save(data / sub / "a.png")
    res = _bench(tmp_path, data)
    rows = res.results["jpeg-420"]["per_image"]
    assert {r["item"] for r in rows} == {"x/a.png", "y/a.png"} and len(rows) == res.points
    again = _bench(tmp_path, data)
    assert again.cached == res.points and again.results["jpeg-420"]["per_image"] == rows


def test_bench_cache_includes_frames_and_size(tmp_path):
    kw = dict(medium="video", codecs=("x264",))
    first = _bench(tmp_path, DATA / "video", frames=1, size=(32, 32), **kw)
    assert first.cached == 0 and first.points > 0
    assert _bench(tmp_path, DATA / "video", frames=1, size=(32, 32), **kw).cached == first.points
    assert _bench(tmp_path, DATA / "video", frames=2, size=(32, 32), **kw).cached == 0
    assert _bench(tmp_path, DATA / "video", frames=1, size=(16, 32), **kw).cached == 0


def test_video_outputs_get_the_mode_the_umask_gives(tmp_path):
    import os
    import stat

    from neurocodec.codecs.video.io import write_video

    clip = np.full((2, 16, 16, 3), 90, np.uint8)
    old = os.umask(0o002)
    try:
        for name in ("c.mp4", "c.y4m", "frames"):
            write_video(tmp_path / name, clip)
    finally:
        os.umask(old)
    for name, mode in (("c.mp4", 0o664), ("c.y4m", 0o664), ("frames", 0o775),
                       ("frames/" + os.listdir(tmp_path / "frames")[0], 0o664)):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_sog_folder_gets_the_mode_the_umask_gives(tmp_path):
    import os
    import stat

    from neurocodec.codecs.splat.io import read_scene, write_scene

    scene = read_scene(DATA / "splat" / "biker_300.ply")
    old = os.umask(0o002)
    try:
        write_scene(tmp_path / "s" / "meta.json", scene)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "s").stat().st_mode) == 0o775
    assert stat.S_IMODE((tmp_path / "s" / "meta.json").stat().st_mode) == 0o664
