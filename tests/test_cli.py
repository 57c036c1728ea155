import json
import shutil

import numpy as np
import pytest
from PIL import Image

from neurocodec.cli import main
from tests.conftest import DATA


def run(capsys, *args) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255**2 / mse)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".ppm", ".webp"])
def test_encode_decode_formats(tiny_env, tmp_path, capsys, ext):
    src = tmp_path / f"in{ext}"
    img = Image.open(DATA / "kodim19_crop75x53.png").convert("RGB")
    img.save(src, **({"lossless": True} if ext == ".webp" else {}))
    rc, out, _ = run(capsys, "encode", src, "-o", tmp_path / "a.ncb", "--codec", "tiny-test",
                     "-q", 1)
    assert rc == 0 and "bpp" in out
    rc, _, _ = run(capsys, "decode", tmp_path / "a.ncb", "-o", tmp_path / "a.png")
    assert rc == 0
    assert Image.open(tmp_path / "a.png").size == (75, 53)


def test_shipped_default_model_round_trip(tmp_path, capsys):
    """The default shipped model on a real 128x96 photo crop, through the files."""
    src = DATA / "kodim19_crop128x96.png"
    rc, _, _ = run(capsys, "encode", src, "-o", tmp_path / "x.ncb", "-q", 5)
    assert rc == 0
    rc, _, _ = run(capsys, "decode", tmp_path / "x.ncb", "-o", tmp_path / "x.png")
    assert rc == 0
    a = np.asarray(Image.open(src).convert("RGB"))
    b = np.asarray(Image.open(tmp_path / "x.png"))
    assert a.shape == b.shape
    assert psnr(a, b) > 26.0  # a trained model, not noise
    rc, out, _ = run(capsys, "info", tmp_path / "x.ncb", "--json")
    info = json.loads(out)
    assert info["shape"] == [96, 128, 3] and info["meta"]["quality"] == 5
    assert info["file_bytes"] == (tmp_path / "x.ncb").stat().st_size


def test_zoo_list_json(capsys):
    rc, out, _ = run(capsys, "zoo", "list", "--json")
    assert rc == 0
    models = json.loads(out)
    assert models, "no shipped model"
    for m in models:
        assert {"name", "medium", "qualities", "params", "training_command",
                "training_hours"} <= set(m)
        assert m["qualities"] and (m["params"] > 0) == (m["weights"] is not None)
    assert {m["medium"] for m in models} >= {"image", "video"}


def _zoo_names() -> list[str]:
    from neurocodec.codecs.registry import list_models

    return [m.name for m in list_models() if m.medium == "image"]


@pytest.mark.parametrize("name", _zoo_names())
def test_every_zoo_model_and_quality_round_trips(name, tmp_path, capsys):
    """`neurocodec encode --codec NAME -q N` and decode work for every listed model and quality;
    more quality costs more bytes and gives a closer image."""
    rc, out, _ = run(capsys, "zoo", "list", "--json")
    (model,) = [m for m in json.loads(out) if m["name"] == name]
    src = DATA / "kodim19_crop128x96.png"
    a = np.asarray(Image.open(src).convert("RGB"))
    sizes, psnrs = [], []
    for q in model["qualities"]:
        f = tmp_path / f"{q}.ncb"
        assert run(capsys, "encode", src, "-o", f, "--codec", name, "-q", q)[0] == 0
        assert run(capsys, "decode", f, "-o", tmp_path / f"{q}.png")[0] == 0
        sizes.append(f.stat().st_size)
        psnrs.append(psnr(a, np.asarray(Image.open(tmp_path / f"{q}.png"))))
    assert sizes == sorted(sizes) and psnrs == sorted(psnrs), (sizes, psnrs)
    assert psnrs[0] > 24.0 and psnrs[-1] > 33.0


def test_bad_inputs_give_one_line_errors(tiny_env, tmp_path, capsys):
    good = tmp_path / "in.png"
    shutil.copy(DATA / "kodim19_crop75x53.png", good)
    (tmp_path / "not_an_image.png").write_bytes(b"hello")
    (tmp_path / "file.txt").write_bytes(b"hello")
    cases = [
        ("encode", tmp_path / "missing.png", "-o", tmp_path / "o.ncb"),
        ("encode", tmp_path / "not_an_image.png", "-o", tmp_path / "o.ncb"),
        ("encode", tmp_path / "file.txt", "-o", tmp_path / "o.ncb"),
        ("encode", good, "-o", tmp_path / "o.ncb", "--codec", "no-such-model"),
        ("encode", good, "-o", tmp_path / "o.ncb", "--codec", "tiny-test", "-q", 9),
        ("decode", good, "-o", tmp_path / "o.png"),
        ("decode", tmp_path / "missing.ncb", "-o", tmp_path / "o.png"),
        ("info", tmp_path / "file.txt"),
    ]
    for args in cases:
        rc, _, err = run(capsys, *args)
        assert rc != 0, args
        assert err.startswith("neurocodec: error:") and err.count("\n") == 1, err
    assert not (tmp_path / "o.ncb").exists() and not (tmp_path / "o.png").exists()


def test_existing_output_is_kept_without_force(tiny_env, tmp_path, capsys):
    src = DATA / "kodim19_crop75x53.png"
    out = tmp_path / "o.ncb"
    out.write_bytes(b"precious")
    rc, _, err = run(capsys, "encode", src, "-o", out, "--codec", "tiny-test")
    assert rc != 0 and "exists" in err and out.read_bytes() == b"precious"
    rc, _, _ = run(capsys, "encode", src, "-o", out, "--codec", "tiny-test", "-q", 0, "--force")
    assert rc == 0 and out.read_bytes()[:4] == b"NCDC"


def test_truncated_and_corrupted_files(tiny_env, tmp_path, capsys):
    src = DATA / "kodim19_crop75x53.png"
    enc = tmp_path / "o.ncb"
    assert run(capsys, "encode", src, "-o", enc, "--codec", "tiny-test", "-q", 1)[0] == 0
    data = enc.read_bytes()
    for name, bad in [("trunc", data[: len(data) // 2]), ("flip", data[:-5] + bytes([data[-5] ^ 1]) + data[-4:])]:
        p = tmp_path / f"{name}.ncb"
        p.write_bytes(bad)
        rc, _, err = run(capsys, "decode", p, "-o", tmp_path / f"{name}.png")
        assert rc != 0 and err.count("\n") == 1
        assert not (tmp_path / f"{name}.png").exists()


def test_decode_caps_are_cli_flags(tiny_env, tmp_path, capsys):
    src = DATA / "kodim19_crop75x53.png"
    enc = tmp_path / "o.ncb"
    assert run(capsys, "encode", src, "-o", enc, "--codec", "tiny-test", "-q", 0)[0] == 0
    rc, _, err = run(capsys, "decode", enc, "-o", tmp_path / "a.png", "--max-pixels", 1000)
    assert rc == 1 and "--max-pixels" in err and err.count("\n") == 1
    assert not (tmp_path / "a.png").exists()
    rc, _, err = run(capsys, "decode", enc, "-o", tmp_path / "a.png", "--max-pixels", 0)
    assert rc == 1 and err.count("\n") == 1
    assert run(capsys, "decode", enc, "-o", tmp_path / "a.png", "--max-pixels", 75 * 53)[0] == 0
    rc, out, _ = run(capsys, "info", enc)
    assert "medium     image" in out
