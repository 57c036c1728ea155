"""The benchmark runner, its resume cache and the reports, through the library and the CLI."""

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from neurocodec.cli import main
from neurocodec.errors import InputError
from neurocodec.eval.bench import BenchConfig, run_bench, write_bench_report

from .conftest import DATA

# The bench walks folders recursively: only the test images, not the SOG textures of
# tests/data/splat (WebP files that are no photos).
IMAGES = DATA / "images"

VTM = Path(__file__).parent / "data" / "vtm_published_subset.json"


class _StrictHTML(HTMLParser):
    VOID = {"meta", "br", "img", "hr", "link", "input"}

    def __init__(self):
        super().__init__()
        self.stack, self.tags = [], set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag not in self.VOID and not tag.endswith("/"):
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.add(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()


def test_runner_resumes_and_remeasures_changed_codecs(tmp_path, monkeypatch):
    cfg = BenchConfig(data=str(IMAGES), codecs=("jpeg-420", "webp", "vtm"), out=str(tmp_path),
                      workers=1, progress=False)
    run = run_bench(cfg)
    assert set(run.results) == {"jpeg-420", "webp"} and "vtm" in run.unavailable
    n = run.points
    assert n == 2 * (11 + 11) and run.cached == 0
    jpeg = json.loads((tmp_path / "jpeg-420.json").read_text())
    r = jpeg["results"]
    assert len(r["bpp"]) == 11 and r["bpp"] == sorted(r["bpp"])
    assert {"psnr-rgb", "psnr-y", "psnr-yuv", "ms-ssim-rgb", "encoding_time"} <= set(r)
    assert jpeg["environment"]["versions"]["imagecodecs"]
    # real sizes: every per-image row's bpp is its byte count over its pixels
    row = jpeg["per_image"][0]
    assert row["bpp"] == pytest.approx(8 * row["bytes"] / (53 * 75) if "75" in row["item"]
                                       else 8 * row["bytes"] / (96 * 128))

    again = run_bench(cfg)  # an interrupted or repeated run measures nothing twice
    assert again.cached == n and again.points == n
    assert again.results["jpeg-420"]["results"]["bpp"] == r["bpp"]

    # a codec whose description (library version, weights) changed is measured afresh
    cache = tmp_path / "cache" / "webp.jsonl"
    cache.write_text(cache.read_text().replace('"fingerprint": "WebP', '"fingerprint": "old WebP'))
    third = run_bench(cfg)
    assert third.cached == 22 and third.points == n


def test_runner_with_workers_and_target_bpp(tmp_path):
    cfg = BenchConfig(data=str(IMAGES), codecs=("jpeg-420", "vvc"), out=str(tmp_path), workers=2,
                      progress=False, target_bpp=(1.0, 2.0), limit=1)
    run = run_bench(cfg)
    for name in ("jpeg-420", "vvc"):
        bpp = run.results[name]["results"]["bpp"]
        assert len(bpp) == 2 and abs(bpp[0] - 1.0) < 0.2 and abs(bpp[1] - 2.0) < 0.3, bpp


def test_report_files_and_html(tmp_path):
    cfg = BenchConfig(data=str(IMAGES), codecs=("jpeg-420", "webp", "vvc", "hm"), out=str(tmp_path),
                      anchor="vvc", extra=(str(VTM),), workers=1, progress=False)
    paths = write_bench_report(run_bench(cfg))
    for name in ("rd-psnr.png", "rd-psnr.svg", "rd-msssim.png", "rd-msssim.svg"):
        assert (tmp_path / name).stat().st_size > 1000
    page = (tmp_path / "report.html").read_text()
    parser = _StrictHTML()
    parser.feed(page)
    assert not parser.stack and {"table", "svg", "h1"} <= parser.tags
    assert "unavailable" in page and "<img" not in page  # self-contained: plots inline
    md = paths["markdown"].read_text()
    assert "| jpeg-420 | vvc |" in md and "VTM (published)" in md
    bd = json.loads(paths["bd"].read_text())
    rows = {(r["codec"], r["reference"]): r for r in bd["rows"]}
    # WebP beats JPEG on these crops, so against the same anchor it needs fewer bits
    assert rows[("webp", "vvc")]["bd_rate"] < rows[("jpeg-420", "vvc")]["bd_rate"]
    assert bd["meta"]["seconds"] > 0


def test_cli_bench_image_and_errors(tmp_path, capsys):
    out = tmp_path / "r"
    rc = main(["bench", "image", "--data", str(IMAGES), "--codecs", "jpeg-444,vtm", "--anchor",
               "jpeg-444", "--out", str(out), "--workers", "1", "--no-progress", "--vtm-dir",
               str(tmp_path)])
    text = capsys.readouterr()
    assert rc == 0 and "vtm: unavailable" in text.out
    assert (out / "report.md").exists() and (out / "jpeg-444.json").exists()
    assert main(["bench", "image", "--data", str(tmp_path / "none"), "--out", str(out),
                 "--no-progress"]) == 1
    assert "not a folder of images" in capsys.readouterr().err
    assert main(["bench", "image", "--data", str(IMAGES), "--codecs", "nonesuch", "--out",
                 str(out), "--no-progress"]) == 1
    assert "unknown" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["bench", "image", "--data", str(IMAGES), "--codecs", "jpeg-444", "--out",
                 str(out), "--extra", str(bad), "--no-progress"]) == 1
    assert "CompressAI-schema" in capsys.readouterr().err


def test_cli_bench_video(tmp_path, capsys):
    rc = main(["bench", "video", "--data", str(DATA / "video"), "--codecs", "x264,av1",
               "--anchor", "x264", "--frames", "2", "--size", "32x32", "--out", str(tmp_path),
               "--workers", "1", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    res = json.loads((tmp_path / "av1.json").read_text())
    assert len(res["results"]["bpp"]) == 6 and res["per_image"][0]["item"].endswith(".yuv")
    assert "| av1 | x264 |" in (tmp_path / "report.md").read_text()


def test_unknown_medium_input_errors(tmp_path):
    with pytest.raises(InputError):
        run_bench(BenchConfig(data=str(tmp_path), codecs=("jpeg",), out=str(tmp_path / "o"),
                              workers=1, progress=False))


def test_zoo_bd_script(tmp_path, capsys):
    """benchmarks/zoo.py: a curve that needs 10% more bits at every PSNR is +10% against the
    original, and a model listed as its own reference is not compared with itself."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "zoo_bench", Path(__file__).resolve().parent.parent / "benchmarks" / "zoo.py")
    zoo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(zoo)
    base = {"bpp": [0.2, 0.4, 0.8, 1.6], "psnr-rgb": [28.0, 31.0, 34.0, 37.0],
            "ms-ssim-rgb": [0.9, 0.95, 0.975, 0.99]}
    more = dict(base, bpp=[b * 1.1 for b in base["bpp"]])
    for name, r in (("a", base), ("b", more)):
        (tmp_path / f"{name}.json").write_text(json.dumps({"name": name, "results": r}))
    out = tmp_path / "bd.json"
    zoo.main(["--results", str(tmp_path), "--models", "a,b", "--refs", "a", "--json", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert [(r["codec"], r["reference"]) for r in rows] == [("b", "a")]
    assert rows[0]["bd_rate"] == pytest.approx(10.0, abs=0.01)
    assert rows[0]["bd_rate_msssim"] == pytest.approx(10.0, abs=0.01)
    assert "+10.0%" in capsys.readouterr().out


def test_first_point_of_a_codec_is_timed_warm(monkeypatch):
    """A worker codes one item untimed before its first timed point of each codec (loading
    compiled kernels is not booked to that point); video, whose encode is a fit, does not."""
    import numpy as np

    from neurocodec.eval import bench
    from neurocodec.eval.baselines import Baseline

    calls = []

    def codec(name):
        return Baseline(name, name, (1, 2), None,
                        lambda x, q: calls.append((name, "enc", q)) or b"\0" * q,
                        lambda b, shape: calls.append((name, "dec")) or np.zeros(shape + (3,)))

    def medium(warm_up):
        return bench.Medium("image", lambda d: [], lambda p: np.zeros((4, 4, 3), np.uint8),
                            codec, lambda x, r: {"psnr-rgb": 1.0}, lambda x: 16,
                            bench.table_for("image"), warm_up=warm_up)

    for warm_up, want in ((True, 3), (False, 2)):
        calls.clear()
        monkeypatch.setattr(bench, "_WORKER", {"medium": medium(warm_up), "data": "."})
        for q in (1, 2):
            p = bench.run_point("a", ("q", q), "x.png")
            assert p["bytes"] == q and p["encoding_time"] >= 0
        assert sum(c[1] == "enc" for c in calls) == want, calls
        assert calls[0] == ("a", "enc", 1)
