"""The medium-agnostic seams: one registry, one codec interface, the CLI and the Python API
dispatching on the medium. A second medium is plugged in here the way video and splats will
be, to show that nothing outside the registry has to change for it."""

import json
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import neurocodec
from neurocodec.cli import main
from neurocodec.codecs import registry
from neurocodec.codecs.base import Codec, Medium, reject_options
from neurocodec.codecs.container import Container, write_atomic
from neurocodec.errors import BitstreamError, InputError
from neurocodec.eval.bench import BenchConfig, run_bench
from tests.conftest import DATA


def run(capsys, *args) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


# --- a second medium: 1-D int16 signals in .sig files, coded by zlib at three levels ---------

def _read_sig(p: Path):
    data = p.read_bytes()
    if len(data) % 2:
        raise InputError(f"{p}: not a .sig file (odd length)")
    return np.frombuffer(data, "<i2").copy(), {}


def _write_sig(p: Path, x, force: bool, meta: dict | None = None) -> None:
    write_atomic(p, x.astype("<i2").tobytes(), force=force)


class SigCodec(Codec):
    """A standalone (weightless) codec: lossless at q2, dropping 1 or 2 low bits below."""

    medium, family, name, digest = "signal", "zsig", "zsig", "0" * 16

    @property
    def qualities(self):
        return [0, 1, 2]

    def encode(self, x, quality, meta=None, **options):
        reject_options(self, options)
        self.check_quality(quality)
        shift = 2 - quality
        payload = zlib.compress(((x >> shift).astype("<i2")).tobytes(), 9)
        return Container(codec=self.family, model=self.name, weights=self.digest,
                         shape=[int(x.size)], meta={"shift": shift}, sections=[payload],
                         medium=self.medium).to_bytes()

    def decode(self, c, limits=None):
        self.check_container(c)
        x = np.frombuffer(zlib.decompress(c.sections[0]), "<i2").astype(np.int16)
        if x.size != c.shape[0]:
            raise BitstreamError("corrupted file: signal length")
        return (x << c.meta["shift"]).astype(np.int16)


@pytest.fixture
def signal_medium(monkeypatch):
    registry.media()  # the shipped plugins first
    m = Medium(name="signal", read_exts=(".sig",), write_exts=(".sig",), read=_read_sig,
               write=_write_sig, units=lambda x: int(x.size), describe=lambda x: f"{x.size} "
               "samples", rate="bits/sample")
    monkeypatch.setitem(registry._MEDIA, "signal", m)
    monkeypatch.setitem(registry._DEFAULTS, "signal", "zsig")
    monkeypatch.setitem(registry._CODECS, "zsig", registry.CodecEntry(
        name="zsig", medium="signal", family="zsig", qualities=[0, 1, 2], load=SigCodec,
        description="zlib, test medium"))
    return m


def _signal(tmp_path) -> Path:
    x = (np.sin(np.arange(4000) / 30.0) * 3000).astype("<i2")
    p = tmp_path / "a.sig"
    p.write_bytes(x.tobytes())
    return p


def test_a_second_medium_plugs_into_cli_zoo_and_api(signal_medium, tmp_path, capsys):
    src = _signal(tmp_path)
    rc, out, _ = run(capsys, "zoo", "list", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["zsig"]["medium"] == "signal" and rows["zsig"]["default"]
    assert rows["hyperprior-vr6"]["medium"] == "image" and rows["hyperprior-vr6"]["default"]
    # the medium follows the extension; the default codec of that medium; its middle quality
    rc, out, _ = run(capsys, "encode", src, "-o", tmp_path / "a.ncb")
    assert rc == 0 and "zsig q=1" in out, out
    rc, out, _ = run(capsys, "info", tmp_path / "a.ncb", "--json")
    assert json.loads(out)["medium"] == "signal"
    rc, out, _ = run(capsys, "decode", tmp_path / "a.ncb", "-o", tmp_path / "b.sig")
    assert rc == 0 and "4000 samples" in out
    x = np.frombuffer(src.read_bytes(), "<i2")
    y = np.frombuffer((tmp_path / "b.sig").read_bytes(), "<i2")
    assert np.abs(x.astype(int) - y).max() <= 1
    # the Python API on an in-memory item and on files
    data = neurocodec.encode(x.copy(), codec="zsig", quality=2)
    assert np.array_equal(neurocodec.decode(data), x)
    neurocodec.encode(src, output=tmp_path / "c.ncb", quality=2)
    assert np.array_equal(neurocodec.decode(tmp_path / "c.ncb"), x)


def test_wrong_pairings_are_one_line_errors(signal_medium, tmp_path, capsys):
    src = _signal(tmp_path)
    png = DATA / "kodim19_crop75x53.png"
    assert run(capsys, "encode", src, "-o", tmp_path / "a.ncb")[0] == 0
    cases = [  # (args, what the message must name)
        (("encode", src, "-o", tmp_path / "x.ncb", "--codec", "hyperprior-vr"), "zsig"),
        (("encode", png, "-o", tmp_path / "x.ncb", "--codec", "zsig"), "hyperprior-vr"),
        (("encode", src, "-o", tmp_path / "x.ncb", "--refine", 5), "refine"),
        (("encode", tmp_path / "a.wav", "-o", tmp_path / "x.ncb"), ".sig"),
        (("decode", tmp_path / "a.ncb", "-o", tmp_path / "x.png"), ".sig"),
    ]
    for args, names in cases:
        rc, _, err = run(capsys, *args)
        assert rc == 1 and err.startswith("neurocodec: error:") and err.count("\n") == 1, err
        assert names in err, err
    assert not (tmp_path / "x.ncb").exists() and not (tmp_path / "x.png").exists()


def test_header_names_the_decoder(signal_medium, tmp_path):
    """A file decodes by the model named in its header; a header whose medium or family does
    not match that model's is refused."""
    x = np.arange(100, dtype=np.int16)
    c = Container.from_bytes(neurocodec.encode(x, codec="zsig", quality=2))
    assert registry.codec_for(c).name == "zsig"
    c.codec = "hyperprior"
    with pytest.raises(BitstreamError, match="family"):
        registry.codec_for(c)
    c.codec, c.model = "zsig", "no-such-model"
    with pytest.raises(BitstreamError, match="no-such-model"):
        registry.codec_for(c)


def test_bench_measures_a_registered_codec_of_any_medium(tmp_path):
    """`bench` resolves registered codecs through the same registry (here the default image
    model), and an unknown medium is a one-line InputError, not a KeyError."""
    d = tmp_path / "imgs"
    d.mkdir()
    Image.open(DATA / "kodim19_crop75x53.png").save(d / "a.png")
    r = run_bench(BenchConfig(data=str(d), codecs=("hyperprior",), out=str(tmp_path / "o"),
                              workers=1, progress=False))
    res = r.results["hyperprior"]["results"]
    assert len(res["bpp"]) == 8 and res["psnr-rgb"] == sorted(res["psnr-rgb"])
    with pytest.raises(InputError, match="medium"):
        run_bench(BenchConfig(data=str(d), codecs=("x",), out=str(tmp_path / "o2"),
                              medium="audio", workers=1, progress=False))


def test_single_rate_model_encodes_without_a_quality(tmp_path, capsys, monkeypatch):
    """A single-λ model (what `train image --lmbda X` makes) has one quality, and `encode`
    without -q uses it."""
    from neurocodec.codecs.image.codec import save_weights
    from neurocodec.codecs.image.hyperprior import HyperpriorConfig, ScaleHyperprior

    m = ScaleHyperprior(HyperpriorConfig(N=8, M=12, lmbdas=(0.01,))).eval()
    save_weights(m, tmp_path / "one.safetensors")
    (tmp_path / "one.json").write_text(json.dumps({
        "name": "one", "codec": "hyperprior", "medium": "image", "qualities": [0],
        "params": 1, "training_command": "none", "training_hours": 0.0, "data": "none"}))
    monkeypatch.setenv("NEUROCODEC_WEIGHTS", str(tmp_path))
    registry.weights_digest.cache_clear()
    rc, out, err = run(capsys, "encode", DATA / "kodim19_crop75x53.png", "-o",
                       tmp_path / "a.ncb", "--codec", "one")
    assert rc == 0 and "q=0" in out, err


def test_layering_without_cycles():
    """The CPU coder does not load the kernels; encoding an image does not load the trainer."""
    import subprocess
    import sys

    code = ("import sys; import neurocodec.entropy.rans, neurocodec.api as a; "
            "import numpy as np; a.encode(np.zeros((40, 40, 3), np.uint8), quality=0); "
            "bad = [m for m in sys.modules if m.startswith(('neurocodec.train', "
            "'neurocodec.kernels'))]; assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-1500:]


def test_a_medium_this_build_lacks_is_a_clean_error(tmp_path, capsys):
    c = Container(codec="x", model="m", weights="", shape=[3], sections=[b""], medium="audio")
    (tmp_path / "a.ncb").write_bytes(c.to_bytes())
    rc, _, err = run(capsys, "decode", tmp_path / "a.ncb", "-o", tmp_path / "a.png")
    assert rc == 1 and "medium 'audio'" in err and err.count("\n") == 1
