"""Seconds per fitting step of HNeRV and NeRV under fp32, channels_last and bf16 autocast,
interleaved in one run on real frames (the trainer's step: forward, L2 loss, backward, Adam),
printed as throughput ratios to fp32.

    python benchmarks/video_fit_speed.py --clip bunny_320x180.y4m --params 200k --steps 8
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def main() -> None:
    from neurocodec.codecs.video.codec import parse_params
    from neurocodec.codecs.video.fit import FitConfig, frame_times, frames_tensor
    from neurocodec.codecs.video.io import read_video
    from neurocodec.codecs.video.models import INRConfig, build
    from neurocodec.eval import environment

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", required=True)
    p.add_argument("--params", default="200k")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--steps", type=int, default=8, help="timed steps per variant and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    clip = read_video(a.clip, frames=(0, a.frames), clamp=True)[0]
    x_all, t_all = frames_tensor(clip), frame_times(len(clip))
    variants = {"fp32": FitConfig(precision="fp32"),
                "channels_last": FitConfig(precision="fp32", channels_last=True),
                "bf16": FitConfig(precision="bf16"),
                "bf16+channels_last": FitConfig(precision="bf16", channels_last=True)}
    best: dict = {}
    for kind in ("hnerv", "nerv"):
        models = {}
        for name, cfg in variants.items():
            torch.manual_seed(0)
            m = build(INRConfig(kind, len(clip), clip.shape[1], clip.shape[2],
                                parse_params(a.params))).train()
            if cfg.channels_last:
                m = m.to(memory_format=torch.channels_last)
            models[name] = (m, torch.optim.Adam(m.parameters(), 1e-3), cfg)
        for _ in range(a.rounds):  # interleaved: drifts of a shared machine hit all alike
            for name, (m, opt, cfg) in models.items():
                times = []
                for s in range(a.steps + 1):
                    i = torch.tensor([(2 * s) % len(clip), (2 * s + 1) % len(clip)])
                    x, t = x_all[i], t_all[i]
                    if cfg.channels_last:
                        x = x.contiguous(memory_format=torch.channels_last)
                    t0 = time.perf_counter()
                    with torch.autocast("cpu", torch.bfloat16, enabled=cfg.precision == "bf16"):
                        y = m(x, t)
                    loss = torch.mean((y.float() - x) ** 2)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    if s:  # the first step of a round warms caches up
                        times.append(time.perf_counter() - t0)
                key = (kind, name)
                best[key] = min(best.get(key, 1e9), sum(times) / len(times))
    rows = []
    for kind in ("hnerv", "nerv"):
        for name in variants:
            s = best[(kind, name)]
            rows.append({"codec": kind, "variant": name, "s_per_step": round(s, 4),
                         "vs_fp32": round(best[(kind, "fp32")] / s, 3)})
            print(f"{kind:6s} {name:18s} {s:.4f} s/step  {best[(kind, 'fp32')] / s:.2f}x fp32")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"clip": a.clip, "params": a.params, "threads": a.threads,
                       "cpu": environment.cpu_model(),
                       "bf16_arithmetic": environment.resolve_precision("auto") == "bf16",
                       "rows": rows}, f,
                      indent=2)


if __name__ == "__main__":
    main()
