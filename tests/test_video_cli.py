"""The video codecs through the command line: fit -> encode -> decode on a real tiny clip."""

from __future__ import annotations

import json
import zlib

import numpy as np

from neurocodec.cli import main
from neurocodec.codecs.container import Container
from neurocodec.codecs.video.io import read_video

from .conftest import DATA

CLIP = DATA / "video" / "tiny_8f_64x64.y4m"
FAST = ["--params", "8k", "--epochs", "2"]


def test_encode_decode_cli(tmp_path, capsys):
    out = tmp_path / "clip.ncb"
    assert main(["encode", str(CLIP), "-o", str(out), "--codec", "hnerv", "--frames", "2:6",
                 "--precision", "bf16", *FAST]) == 0
    c = Container.from_bytes(out.read_bytes())
    assert c.medium == "video" and c.shape == [4, 64, 64, 3]
    assert c.meta["fps"] == read_video(CLIP)[1]["fps"]
    for target in ("dec.mp4", "frames/"):
        assert main(["decode", str(out), "-o", str(tmp_path / target)]) == 0
        rec, _ = read_video(tmp_path / target)
        assert rec.shape == (4, 64, 64, 3)
        # lossless outputs hold exactly the quantized model's frames
        assert zlib.crc32(np.ascontiguousarray(rec).tobytes()) == c.meta["frames_crc32"]


def test_zoo_lists_video_codecs(capsys):
    assert main(["zoo", "list", "--json", "--medium", "video"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"]: r["medium"] for r in rows} == {"hnerv": "video", "nerv": "video"}
    assert [r["name"] for r in rows if r["default"]] == ["hnerv"]


def test_bad_inputs_leave_nothing(tmp_path, capsys):
    raw = tmp_path / "clip.yuv"
    raw.write_bytes(bytes(64 * 64 * 3 // 2 * 3 + 100))  # not a whole number of frames
    out = tmp_path / "x.ncb"
    assert main(["encode", str(raw), "-o", str(out), "--video-size", "64x64", *FAST]) == 1
    err = capsys.readouterr().err
    assert "frame" in err and "Traceback" not in err and not out.exists()
    empty = tmp_path / "empty.yuv"
    empty.write_bytes(b"")
    assert main(["encode", str(empty), "-o", str(out), "--video-size", "64x64", *FAST]) == 1
    assert not out.exists()
    assert main(["encode", str(CLIP), "-o", str(out), "--codec", "hyperprior-vr2"]) == 1
    assert "video" in capsys.readouterr().err and not out.exists()
    assert main(["encode", str(CLIP), "-o", str(out), "--params", "lots"]) == 1
    photo = tmp_path / "p.ncb"
    assert main(["encode", str(DATA / "kodim19_crop75x53.png"), "-o", str(photo), "--codec",
                 "hyperprior-vr", "--precision", "fp32"]) == 1  # a fit option for an image
    assert "precision" in capsys.readouterr().err and not photo.exists()
    assert main(["encode", str(CLIP), "-o", str(out), "--frames", "7:99", *FAST]) == 1
    assert not out.exists()


def test_decode_output_checked_first(tmp_path, capsys):
    from neurocodec.codecs.video.codec import INRCodec

    clip = read_video(CLIP, frames=(0, 2))[0]
    f = tmp_path / "c.ncb"
    f.write_bytes(INRCodec("nerv").encode(clip, 0, params=8000, epochs=1, progress="off"))
    assert main(["decode", str(f), "-o", str(tmp_path / "x.png")]) == 1
    assert ".mp4" in capsys.readouterr().err and not (tmp_path / "x.png").exists()
