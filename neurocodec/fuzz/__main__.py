"""``python -m neurocodec.fuzz``: the long fuzz campaign (``make fuzz``), one target's case
reproduced, or the target table listed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m neurocodec.fuzz",
                                description="Fuzz every decoder and file reader")
    p.add_argument("--cases", type=int, default=25000,
                   help="cases per target (slow targets run their share of it; default 25000, "
                        "as make fuzz)")
    p.add_argument("--targets", default="", help="comma-separated names (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--deadline", type=float, default=2.0,
                   help="CPU seconds a case may take (wall time: 10 times that)")
    p.add_argument("--mem-mb", type=float, default=512.0, help="peak RSS a case may add (MiB)")
    p.add_argument("--out", type=Path, help="write the JSON summary here")
    p.add_argument("--save", type=Path, help="pickle failing inputs into this folder")
    p.add_argument("--repro", metavar="TARGET:CASE",
                   help="run one case without the guards (its traceback shows)")
    p.add_argument("--list", action="store_true", help="list the targets")
    a = p.parse_args(argv)

    from neurocodec.fuzz.targets import TARGETS, threads_one

    threads_one()
    if a.list:
        for t in TARGETS.values():
            print(f"{t.name:17s} suite {t.suite:4d}  share {t.share:4.2f}  {t.what}")
        return 0
    if a.repro:
        from neurocodec.fuzz.campaign import make_case

        name, _, i = a.repro.partition(":")
        t = TARGETS[name]
        x = make_case(t, a.seed, int(i))
        print(f"{name} case {i}: {str(x)[:300]}")
        try:
            r = t.run(x)
        except t.allowed as e:
            print(f"rejected: {type(e).__name__}: {e}")
            return 0
        print(f"decoded: {type(r).__name__}; check: {t.check(r) if t.check else None}")
        return 0
    names = [n for n in a.targets.split(",") if n] or list(TARGETS)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        p.error(f"unknown targets {', '.join(unknown)} (see --list)")
    from neurocodec.fuzz.campaign import campaign, write_summary

    summary = campaign(names, a.cases, a.seed, a.deadline, a.mem_mb, a.save)
    if a.out:
        write_summary(summary, a.out)
        print(f"summary: {a.out}")
    return 1 if summary["total"]["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
