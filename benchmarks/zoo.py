"""BD-rates of the image zoo against the references issue 3 names, from Kodak result files.

Every input is a CompressAI-schema JSON with real file sizes (the Kodak report's per-codec
files, or a published curve); nothing here is re-encoded. Prints one table (BD-rate on
PSNR-RGB and MS-SSIM, pchip, with the overlap of the PSNR ranges) and writes it as JSON.

    python benchmarks/zoo.py --results docs/results/kodak \
        --models mlic-vr,hyperprior-vr,mlic-vr-2010steps \
        --refs vtm=../shared/data/anchors/kodak/compressai_vtm.json,webp,jpeg2000,hyperprior-vr \
        --json docs/results/kodak/zoo-bd.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from neurocodec.eval.bdrate import load_results
from neurocodec.eval.report import bd_rows


def _load(spec: str, results: Path) -> tuple[str, dict]:
    """``name`` (→ RESULTS/name.json) or ``label=path``."""
    label, _, path = spec.partition("=")
    return label, load_results(Path(path) if path else results / f"{label}.json")


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:+.1f}%"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path("docs/results/kodak"))
    ap.add_argument("--models", required=True, help="comma-separated names or label=path")
    ap.add_argument("--refs", required=True, help="comma-separated names or label=path")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    models = dict(_load(s, a.results) for s in a.models.split(","))
    refs = {}
    for s in a.refs.split(","):
        label, res = _load(s, a.results)
        refs[label] = models.get(label, res)  # a model that is also a reference: skip itself
    rows = bd_rows(models, refs)
    print(f"{'model':<22} {'reference':<16} {'BD-rate PSNR':>13} {'BD-PSNR':>8} "
          f"{'BD-rate MS-SSIM':>16} {'overlap':>8}")
    for r in rows:
        print(f"{r['codec']:<22} {r['reference']:<16} {_pct(r['bd_rate']):>13} "
              f"{r['bd_psnr']:>+7.2f}  {_pct(r['bd_rate_msssim']):>16} {r['overlap']:>8.2f}"
              + (f"  † {r['warning']}" if r["warning"] else ""))
    if a.json:
        a.json.write_text(json.dumps({"method": "pchip", "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
