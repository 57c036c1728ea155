"""The long fuzz run (``make fuzz``): a plain seeded loop over every target, no Hypothesis,
so a case costs its decode and little else.

Case ``i`` of target ``t`` under campaign seed ``s`` draws from ``random.Random(f"{s}/{t}/{i}")``
alone: any case is reproduced from those three values (``python -m neurocodec.fuzz --repro
t:i``), whatever ran before it.
"""

from __future__ import annotations

import datetime
import json
import os
import pickle
import platform
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neurocodec.eval.environment import cpu_model
from neurocodec.fuzz.guard import WALL_FACTOR, Outcome, RssMeter, run_case, short_trace
from neurocodec.fuzz.targets import TARGETS, Target, warm

MAX_LISTED = 20  # failures kept per target in the summary (all are counted)


def case_rng(seed: int, name: str, i: int) -> random.Random:
    return random.Random(f"{seed}/{name}/{i}")


def make_case(t: Target, seed: int, i: int) -> Any:
    return t.make(case_rng(seed, t.name, i), t.seeds())


@dataclass
class Stats:
    """One target's tally."""

    cases: int = 0
    decoded: int = 0
    rejected: Counter = field(default_factory=Counter)  # exception type -> count
    failed: Counter = field(default_factory=Counter)  # failure status -> count
    failures: list[dict] = field(default_factory=list)
    seconds: float = 0.0  # CPU
    slowest: float = 0.0  # CPU
    slowest_wall: float = 0.0
    peak_mb: float = 0.0

    def add(self, i: int, o: Outcome) -> None:
        self.cases += 1
        self.seconds += o.seconds
        self.slowest = max(self.slowest, o.seconds)
        self.slowest_wall = max(self.slowest_wall, o.wall)
        self.peak_mb = max(self.peak_mb, o.peak_mb)
        if o.status == "decoded":
            self.decoded += 1
        elif o.status == "rejected":
            self.rejected[o.error] += 1
        else:
            self.failed[o.status] += 1
            if len(self.failures) < MAX_LISTED:
                self.failures.append({"case": i, "status": o.status, "error": o.error,
                                      "message": o.message, "trace": o.trace})

    def to_json(self, t: Target) -> dict:
        return {"what": t.what, "allowed": [e.__name__ for e in t.allowed],
                "cases": self.cases, "decoded": self.decoded,
                "rejected": dict(sorted(self.rejected.items())),
                "failures": sum(self.failed.values()), "failure_kinds": dict(self.failed),
                "failed_cases": self.failures, "cpu_s": round(self.seconds, 2),
                "slowest_case_cpu_s": round(self.slowest, 4),
                "slowest_case_wall_s": round(self.slowest_wall, 4),
                "max_case_peak_rss_mib": round(self.peak_mb, 1)}


def fuzz_target(t: Target, cases: int, seed: int = 0, deadline: float = 2.0,
                mem_mb: float = 512.0, save: Path | None = None,
                meter: RssMeter | None = None) -> Stats:
    """Run ``cases`` cases of ``t``; failing inputs are pickled under ``save`` if given."""
    meter = meter or RssMeter()
    warm(t)
    st = Stats()
    for i in range(cases):
        try:
            x = make_case(t, seed, i)
        except Exception as e:  # noqa: BLE001 - a bug of the harness: counted, not fatal
            st.add(i, Outcome("harness", type(e).__name__, str(e)[:200], trace=short_trace(e)))
            continue
        o = run_case(t.run, x, t.allowed, meter, deadline, mem_mb, t.check)
        st.add(i, o)
        if o.failed and save is not None:
            d = save / t.name
            d.mkdir(parents=True, exist_ok=True)
            (d / f"case_{i}.pickle").write_bytes(pickle.dumps(x))
    return st




def machine() -> dict:
    import numpy
    import PIL
    import torch

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "numpy": numpy.__version__, "pillow": PIL.__version__,
            "platform": platform.platform()}


def campaign(names: list[str], cases: int, seed: int = 0, deadline: float = 2.0,
             mem_mb: float = 512.0, save: Path | None = None, log=print) -> dict:
    """Every named target for ``round(cases * share)`` cases; returns the JSON summary."""
    meter = RssMeter()
    started = time.time()
    out: dict[str, Any] = {
        "command": " ".join(["python -m neurocodec.fuzz"] + sys.argv[1:]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(), "seed": seed, "deadline_cpu_s": deadline,
        "deadline_wall_s": WALL_FACTOR * deadline,
        "memory_bound_mib": mem_mb,
        "memory_measure": "per-case VmHWM (clear_refs)" if meter.per_case else "ru_maxrss",
        "targets": {}}
    for name in names:
        t = TARGETS[name]
        n = max(1, round(cases * t.share))
        t0 = time.perf_counter()
        st = fuzz_target(t, n, seed, deadline, mem_mb, save, meter)
        wall = time.perf_counter() - t0
        rec = st.to_json(t)
        rec["wall_s"] = round(wall, 1)
        out["targets"][name] = rec
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(st.rejected.items()))
        log(f"{name:17s} {st.cases:7d} cases  {st.decoded:6d} decoded  "
            f"{sum(st.failed.values()):4d} failures  {wall:7.1f} s  ({kinds})")
        for f in st.failures[:5]:
            log(f"    case {f['case']}: {f['status']} {f['trace'] or f['message']}")
    tot = out["targets"].values()
    out["total"] = {"cases": sum(r["cases"] for r in tot),
                    "failures": sum(r["failures"] for r in tot),
                    "wall_s": round(time.time() - started, 1)}
    log(f"total: {out['total']['cases']} cases, {out['total']['failures']} failures, "
        f"{out['total']['wall_s']:.0f} s")
    return out


def write_summary(summary: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=1) + "\n")
