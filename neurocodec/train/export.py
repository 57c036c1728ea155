"""Turn a training checkpoint into a shipped model: fp16 safetensors + manifest + logs.

    python -m neurocodec.train.export RUN_DIR --name hyperprior-vr --out neurocodec/weights \
        --command "neurocodec train image ..." --data "../shared/data/images/train"
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

from neurocodec.codecs.image.base import load_compatible
from neurocodec.codecs.image.codec import save_weights
from neurocodec.train.archs import model_from_checkpoint


def export(run_dir: Path, name: str, out_dir: Path, command: str, data: str) -> Path:
    st = torch.load(run_dir / "checkpoint.pt", weights_only=True, map_location="cpu")
    cfg = st["model_cfg"]
    arch = st.get("arch", "hyperprior")  # checkpoints from before the arch registry
    model = model_from_checkpoint(arch, cfg)
    load_compatible(model, st["model"])
    # Tables are built from the fp16-rounded weights the decoder will actually load.
    model.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
    model.build_z_tables()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.safetensors"
    save_weights(model, path)
    params = sum(p.numel() for p in model.parameters())
    manifest = {"name": name, "codec": model.codec_name, "medium": "image",
                "qualities": list(range(len(cfg["lmbdas"]))), "lmbdas": list(cfg["lmbdas"]),
                "params": params, "training_command": command,
                "training_hours": round(st["elapsed"] / 3600, 3), "training_steps": st["step"],
                "data": data, "config": cfg}
    (out_dir / f"{name}.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for log in ("log", "val"):  # the training curve and the real-bitstream validation
        if (run_dir / f"{log}.csv").exists():
            shutil.copy(run_dir / f"{log}.csv", out_dir / f"{name}.{log}.csv")
    return path


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--name", required=True)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "weights")
    p.add_argument("--command", required=True)
    p.add_argument("--data", required=True)
    a = p.parse_args(argv)
    print(export(a.run_dir, a.name, a.out, a.command, a.data))


if __name__ == "__main__":
    main()
