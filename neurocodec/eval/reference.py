"""VTM (VVC) and HM (HEVC) reference software, when the user points us at their builds.

Run as CompressAI's ``bench vtm``/``bench hm`` run them: all-intra configuration, one frame,
8-bit Y'CbCr 4:4:4 input (BT.709, full range, from :mod:`neurocodec.eval.colour`), RGB PSNR
measured after converting the 8-bit decoded planes back. The build directory comes from
``--vtm-dir``/``--hm-dir`` (which set ``NEUROCODEC_VTM_DIR``/``NEUROCODEC_HM_DIR``) and must
hold the encoder and decoder executables (anywhere below it) and ``cfg/<intra config>``.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurocodec.errors import BaselineUnavailable, ExternalToolError


@dataclass(frozen=True)
class _Tool:
    env: str
    encoders: tuple[str, ...]
    decoders: tuple[str, ...]
    cfg: str
    label: str


TOOLS = {
    "vtm": _Tool("NEUROCODEC_VTM_DIR", ("EncoderAppStatic", "EncoderApp"),
                 ("DecoderAppStatic", "DecoderApp"), "encoder_intra_vtm.cfg", "VTM (VVC)"),
    "hm": _Tool("NEUROCODEC_HM_DIR", ("TAppEncoderStatic", "TAppEncoder"),
                ("TAppDecoderStatic", "TAppDecoder"), "encoder_intra_main_rext.cfg", "HM (HEVC)"),
}


def _find(root: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        for p in sorted(root.rglob(name)):
            if p.is_file() and os.access(p, os.X_OK):
                return p
    return None


def locate(kind: str) -> tuple[Path, Path, Path]:
    """(encoder, decoder, cfg) of ``kind`` ("vtm"/"hm"), or :class:`BaselineUnavailable`."""
    tool = TOOLS[kind]
    root = os.environ.get(tool.env)
    if not root:
        raise BaselineUnavailable(f"{tool.label}: no build given (--{kind}-dir or {tool.env})")
    base = Path(root)
    if not base.is_dir():
        raise BaselineUnavailable(f"{tool.label}: {base} is not a directory")
    enc, dec = _find(base, tool.encoders), _find(base, tool.decoders)
    cfg = next(iter(sorted(base.rglob(tool.cfg))), None)
    missing = [n for n, p in (("encoder", enc), ("decoder", dec), (tool.cfg, cfg)) if p is None]
    if missing:
        raise BaselineUnavailable(f"{tool.label}: no {', '.join(missing)} under {base}")
    return enc, dec, cfg


def _call(cmd: list[str]) -> None:
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False)
    if p.returncode:
        tail = (p.stderr or p.stdout).strip().splitlines()
        raise ExternalToolError(f"{Path(cmd[0]).name} exited {p.returncode}: "
                                f"{tail[-1] if tail else ''}")


def reference_baseline(kind: str):
    from neurocodec.eval import colour
    from neurocodec.eval.baselines import Baseline, Knob

    enc_bin, dec_bin, cfg = locate(kind)

    def enc(img: np.ndarray, qp) -> bytes:
        h, w = img.shape[:2]
        with tempfile.TemporaryDirectory() as d:
            src, bit = Path(d) / "in.yuv", Path(d) / "out.bin"
            src.write_bytes(b"".join(p.astype(np.uint8).tobytes()
                                     for p in colour.rgb_to_planes(img, 8, "444")))
            _call([enc_bin, "-i", src, "-c", cfg, "-q", int(qp), "-o", os.devnull, "-b", bit,
                   "-wdt", w, "-hgt", h, "-fr", 1, "-f", 1, "--InputChromaFormat=444",
                   "--InputBitDepth=8", "--ConformanceWindowMode=1"])
            return bit.read_bytes()

    def dec(b: bytes, shape) -> np.ndarray:
        h, w = shape
        with tempfile.TemporaryDirectory() as d:
            bit, rec = Path(d) / "in.bin", Path(d) / "rec.yuv"
            bit.write_bytes(b)
            _call([dec_bin, "-b", bit, "-o", rec, "-d", 8])
            raw = np.frombuffer(rec.read_bytes(), np.uint8)
        if raw.size != 3 * h * w:
            raise ExternalToolError(f"{dec_bin.name} wrote {raw.size} samples, expected {3 * h * w}")
        return colour.planes_to_rgb(list(raw.reshape(3, h, w)), 8, (h, w))

    return Baseline(name=kind, description=f"{TOOLS[kind].label} all-intra ({enc_bin}), "
                                           "8-bit 4:4:4 BT.709 full range",
                    qualities=(22, 27, 32, 37, 42, 47),
                    knob=Knob(0, 63 if kind == "vtm" else 51, rate_increases=False),
                    encode=enc, decode=dec)
