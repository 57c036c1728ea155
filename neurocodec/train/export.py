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
from neurocodec.codecs.registry import weights_digest
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
    hours, steps = st["elapsed"] / 3600, int(st["step"])
    manifest = {"name": name, "codec": model.codec_name, "medium": "image",
                "qualities": list(range(len(cfg["lmbdas"]))), "lmbdas": list(cfg["lmbdas"]),
                "params": params, "training_command": command,
                "training_hours": round(hours, 3), "training_steps": steps,
                "data": data, "config": cfg}
    parent = _init_parent(run_dir)
    if parent is not None:  # budgets count the starting model's training too
        manifest.update({
            "init_from": parent, "run_hours": round(hours, 3), "run_steps": steps,
            "training_hours": round(hours + parent["training_hours"], 3),
            "training_steps": steps + parent["training_steps"]})
    (out_dir / f"{name}.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for log in ("log", "val"):  # the training curve and the real-bitstream validation
        if (run_dir / f"{log}.csv").exists():
            shutil.copy(run_dir / f"{log}.csv", out_dir / f"{name}.{log}.csv")
    return path


def _init_parent(run_dir: Path) -> dict | None:
    """The shipped model a run started from (``--init NAME``), with its own budget."""
    cfg_path = run_dir / "config.json"
    init = json.loads(cfg_path.read_text()).get("init", "") if cfg_path.exists() else ""
    if not init:
        return None
    if init.endswith(".safetensors"):  # an exported file: its manifest, when beside it
        path, man_path = Path(init), Path(init).with_suffix(".json")
        if not man_path.exists():
            return None
        man = json.loads(man_path.read_text())
        name, hours = man.get("name", path.stem), float(man.get("training_hours", 0.0))
    else:
        from neurocodec.codecs.registry import get_model_info

        info = get_model_info(init)
        path, man, name, hours = info.weights_path, info.manifest, info.name, info.training_hours
    return {"name": name, "weights": weights_digest(path), "training_hours": hours,
            "training_steps": int(man.get("training_steps", 0))}


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
