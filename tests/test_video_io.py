"""The video files layer (neurocodec.codecs.video.io): readers, writers, the output rule."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neurocodec.codecs.video import io as vio
from neurocodec.codecs.video.io import output_ok, read_video, write_video
from neurocodec.errors import ExternalToolError, InputError
from neurocodec.eval.metrics import psnr

DATA = Path(__file__).parent / "data" / "video"
TINY = DATA / "tiny_8f_64x64.y4m"
FOREMAN = DATA / "foreman_crop_64x48_4f.yuv"


@pytest.fixture(scope="module")
def tiny():
    return read_video(TINY)


@pytest.fixture(scope="module")
def noise():
    """Odd sizes, every value: what exact formats must carry bit for bit."""
    return np.random.default_rng(0).integers(0, 256, (3, 47, 63, 3), dtype=np.uint8)


def test_tiny_clip(tiny):
    clip, meta = tiny
    assert clip.shape == (8, 64, 64, 3) and clip.dtype == np.uint8
    assert meta["fps"] == 25.0 and meta["source_pix_fmt"] == "yuv420p"
    assert TINY.stat().st_size <= 100_000
    assert clip.std() > 20 and np.abs(np.diff(clip.astype(int), axis=0)).mean() > 1  # real, moving
    json.dumps(meta)  # goes into the container header


@pytest.mark.parametrize("name", ["clip.mp4", "frames/", "frames"])
def test_exact_round_trips(tmp_path, noise, tiny, name):
    for clip in (noise, tiny[0]):
        out = tmp_path / f"{clip.shape[1]}" / name
        out.parent.mkdir()
        write_video(str(out) + ("/" if name.endswith("/") else ""), clip,
                    meta={"fps_fraction": "30000/1001"})
        back, meta = read_video(out)
        assert np.array_equal(back, clip)
        if name == "clip.mp4":
            assert meta["fps_fraction"] == "30000/1001"
            assert meta["source_pix_fmt"] == "gbrp"  # H.264 RGB, not Y'CbCr
        else:
            assert sorted(q.name for q in out.iterdir()) == [f"{i:06d}.png"
                                                             for i in range(len(clip))]


def test_lossy_round_trips_keep_shape_and_rate(tmp_path, tiny):
    clip, meta = tiny
    m = {**meta, "fps": 12.5, "fps_fraction": "25/2"}
    write_video(tmp_path / "a.y4m", clip, meta=m)
    assert (tmp_path / "a.y4m").read_bytes().startswith(b"YUV4MPEG2 W64 H64 F25:2 ")
    back, bm = read_video(tmp_path / "a.y4m")
    assert back.shape == clip.shape and bm["fps"] == 12.5 and bm["source_pix_fmt"] == "yuv420p"
    p420 = psnr(clip, back)
    assert p420 > 35
    # no drift: brightness is kept (ffmpeg's default rounding lost ~1 level per pass), and
    # a second 4:2:0 pass of frames that were 4:2:0 already loses less than the first
    assert np.abs(back.mean((0, 1, 2)) - clip.mean((0, 1, 2))).max() < 0.2
    write_video(tmp_path / "b.y4m", back, meta=bm)
    assert psnr(back, read_video(tmp_path / "b.y4m")[0]) > p420 + 2
    # an RGB source is written 4:4:4: only the Y'CbCr rounding is lost
    write_video(tmp_path / "c.y4m", clip, meta={"source_pix_fmt": "gbrp"})
    assert b" C444 " in (tmp_path / "c.y4m").read_bytes()[:80]
    c, cm = read_video(tmp_path / "c.y4m")
    assert cm["source_pix_fmt"] == "yuv444p" and psnr(clip, c) > 45 and cm["fps"] == 25.0
    # raw .yuv: 4:2:0, the same frames as 4:2:0 y4m; the rate travels in the name
    write_video(tmp_path / "d_64x64_50.yuv", clip)
    assert (tmp_path / "d_64x64_50.yuv").stat().st_size == 8 * 64 * 64 * 3 // 2
    d, dm = read_video(tmp_path / "d_64x64_50.yuv")
    assert np.array_equal(d, back) and dm["fps"] == 50.0


def test_yuv_size_from_name_or_argument(tmp_path):
    named, meta = read_video(FOREMAN)
    assert named.shape == (4, 48, 64, 3) and meta["fps"] == 25.0
    plain = tmp_path / "foreman.yuv"
    plain.write_bytes(FOREMAN.read_bytes())
    with pytest.raises(InputError, match="--video-size WxH"):
        read_video(plain)
    assert np.array_equal(read_video(plain, video_size=(64, 48))[0], named)
    # the argument wins over the name
    assert read_video(FOREMAN, video_size=(32, 96))[0].shape == (4, 96, 32, 3)
    fps = tmp_path / "x_64x48_12fps.yuv"
    fps.write_bytes(FOREMAN.read_bytes())
    assert read_video(fps)[1]["fps"] == 12.0


def test_wrong_size_yuv_refused():
    with pytest.raises(InputError, match=r"18432 bytes is not a whole number of 60x48 .*"
                                         r"4320 bytes each"):
        read_video(FOREMAN, video_size=(60, 48))
    with pytest.raises(InputError, match="outside"):
        read_video(FOREMAN, video_size=(0, 48))


def test_zero_frames(tmp_path):
    (tmp_path / "e_8x8.yuv").write_bytes(b"")
    (tmp_path / "e.y4m").write_bytes(b"YUV4MPEG2 W8 H8 F25:1 C420jpeg\n")
    (tmp_path / "e").mkdir()
    for p in ("e_8x8.yuv", "e.y4m", "e"):
        with pytest.raises(InputError, match="no frames"):
            read_video(tmp_path / p)


def test_frame_range(tmp_path, tiny):
    clip = tiny[0]
    write_video(tmp_path / "t.mp4", clip)
    write_video(tmp_path / "t/", clip)
    write_video(tmp_path / "t_64x64.yuv", clip)
    yuv = read_video(tmp_path / "t_64x64.yuv")[0]
    for p, full in ((TINY, clip), (tmp_path / "t.mp4", clip), (tmp_path / "t", clip),
                    (tmp_path / "t_64x64.yuv", yuv)):
        part, meta = read_video(p, frames=(2, 5))
        assert np.array_equal(part, full[2:5]) and meta["first_frame"] == 2, p
        assert np.array_equal(read_video(p, frames=(7, 8))[0], full[7:])
        with pytest.raises(InputError, match=r"frames 6:9 are outside the clip \(8 frames"):
            read_video(p, frames=(6, 9))
        assert len(read_video(p, frames=(6, 9), clamp=True)[0]) == 2
        with pytest.raises(InputError, match="outside"):
            read_video(p, frames=(8, 9), clamp=True)
    for bad in ((3, 3), (-1, 2), ("a", 2)):
        with pytest.raises(InputError, match="frame range"):
            read_video(TINY, frames=bad)


def test_corrupt_and_missing_files(tmp_path, noise):
    write_video(tmp_path / "n.mp4", noise)
    good = (tmp_path / "n.mp4").read_bytes()
    y4m = TINY.read_bytes()
    cases = {
        "missing.mp4": None,
        "junk.mp4": b"\0" * 1000,
        "cut.mp4": good[: len(good) // 3],
        "cut.y4m": y4m[:-100],
        "head.y4m": b"YUV4MPEG2 W64 F25:1\n" + y4m.split(b"\n", 1)[1],
        "text.y4m": b"not a video at all\n",
        "marker.y4m": y4m.replace(b"FRAME", b"FRAMX", 3),
        "c444.y4m": y4m.replace(b"C420jpeg", b"C999", 1),
    }
    for name, data in cases.items():
        if data is not None:
            (tmp_path / name).write_bytes(data)
        with pytest.raises(InputError) as e:
            read_video(tmp_path / name)
        msg = str(e.value)
        assert "\n" not in msg and msg.startswith(str(tmp_path / name)) and len(msg) < 300, msg
    (tmp_path / "png").mkdir()
    (tmp_path / "png" / "000000.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(InputError, match="cannot decode PNG"):
        read_video(tmp_path / "png")


def test_memory_cap(tmp_path, tiny, monkeypatch):
    write_video(tmp_path / "t.mp4", tiny[0])
    monkeypatch.setattr(vio, "MAX_CLIP_BYTES", 5 * 64 * 64 * 3)
    for p in (TINY, tmp_path / "t.mp4"):
        with pytest.raises(InputError, match="cap"):
            read_video(p)
        assert len(read_video(p, frames=(0, 5))[0]) == 5
    huge = tmp_path / "huge.y4m"  # one 4096x4096 frame (sparse): refused before decoding
    head = b"YUV4MPEG2 W4096 H4096 F25:1 C420jpeg\nFRAME\n"
    with open(huge, "wb") as f:
        f.write(head)
        f.seek(len(head) + 4096 * 4096 * 3 // 2 - 1)
        f.write(b"\0")
    monkeypatch.setattr(vio, "_decode", None)  # never reached
    with pytest.raises(InputError, match="cap"):
        read_video(huge)


def test_output_rule(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    (tmp_path / "dir.d").mkdir()
    for ok in ("a.mp4", "a.Y4M", "a.yuv", "frames/", "frames", str(tmp_path / "dir.d"),
               "x.frames/"):
        assert output_ok(ok) is None, ok
    for bad in ("a.png", "a.mkv", "a.ncb", str(tmp_path / "file"), "frames/%04d.png"):
        assert isinstance(output_ok(bad), str) and "\n" not in output_ok(bad), bad
    assert set(vio.WRITE_EXTS) == {".mp4", ".y4m", ".yuv", "/"}
    assert {".y4m", ".yuv", ".mp4", ".mkv", ".mov", ".webm", ".avi"} <= set(vio.READ_EXTS)


def test_writes_are_atomic_and_never_overwrite(tmp_path, noise, monkeypatch):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"keep")
    with pytest.raises(InputError, match="exists"):
        write_video(out, noise)
    assert out.read_bytes() == b"keep"
    write_video(out, noise, force=True)
    assert np.array_equal(read_video(out)[0], noise)
    with pytest.raises(InputError, match="uint8"):
        write_video(tmp_path / "f.y4m", noise.astype(np.float32))
    with pytest.raises(InputError, match="does not exist"):
        write_video(tmp_path / "nowhere" / "f.y4m", noise)

    def broken(clip, rate, target, args):  # ffmpeg dies half way through a file
        if target != "pipe:":
            Path(target).write_bytes(b"half")
        raise ExternalToolError("ffmpeg failed: boom")

    monkeypatch.setattr(vio, "_encode", broken)
    before = sorted(tmp_path.iterdir())
    for name in ("new.mp4", "new.y4m", "new.yuv"):
        with pytest.raises(ExternalToolError):
            write_video(tmp_path / name, noise)
    with pytest.raises(ExternalToolError):
        write_video(out, noise, force=True)
    assert sorted(tmp_path.iterdir()) == before
    assert np.array_equal(read_video(out)[0], noise)


def test_frame_folder_replacement(tmp_path, noise, monkeypatch):
    out = tmp_path / "frames"
    out.mkdir()  # an empty folder is there to be filled
    write_video(out, noise)
    with pytest.raises(InputError, match="exists"):
        write_video(out, noise[:1])
    write_video(out, noise[:1], force=True)  # no stale frames left from the longer clip
    assert [q.name for q in out.iterdir()] == ["000000.png"]
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not replacing"):
        write_video(out, noise, force=True)
    assert (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()

    def broken(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("PIL.Image.Image.save", broken)
    with pytest.raises(OSError):
        write_video(out, noise, force=True)
    assert [q.name for q in tmp_path.iterdir()] == ["frames"]
    assert np.array_equal(read_video(out)[0], noise[:1])
