"""The Kodak report: our shipped image models beside every available classical codec.

A convenience wrapper of ``neurocodec bench image`` with the report's settings (VVC anchor,
CompressAI's published curves as extra references). Every point is a real file.

    python benchmarks/kodak.py --data ../shared/data/images/kodak --out reports/kodak
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from neurocodec.cli import main as cli

CODECS = "hyperprior-vr,jpeg-420,jpeg-444,webp,jpeg2000,jpegxl,avif,heic,vvc,hevc,vtm,hm"
PUBLISHED = ("compressai_vtm.json", "compressai_bpg_444_x265_ycbcr.json", "compressai_av1.json",
             "compressai_hm.json")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", default="reports/kodak")
    ap.add_argument("--anchors", default="../shared/data/anchors/kodak",
                    help="folder of published CompressAI-schema curves")
    ap.add_argument("--codecs", default=CODECS)
    ap.add_argument("--workers", default="2")
    a, rest = ap.parse_known_args()
    extra = [str(Path(a.anchors) / n) for n in PUBLISHED if (Path(a.anchors) / n).exists()]
    return cli(["bench", "image", "--data", a.data, "--codecs", a.codecs, "--anchor", "vvc",
                "--out", a.out, "--workers", a.workers, "--title", "Kodak (24 images)",
                *(["--extra", *extra] if extra else []), *rest])


if __name__ == "__main__":
    sys.exit(main())
