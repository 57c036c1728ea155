"""Write the golden vectors: small .ncb files from every shipped image model (container
version 1, as this build writes it) and a manifest with the SHA-256 of each file's decoded
RGB bytes (uint8 ``[H, W, 3]``, C order). tests/test_determinism.py decodes them and compares.

    PYTHONPATH=. python tests/data/golden/make_golden.py

Rerun only on purpose (a model retrained, or a decoder change that is meant to change the
pixels): the point of these files is that the decoded pixels never change unnoticed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from neurocodec.codecs.container import VERSION, Container
from neurocodec.codecs.registry import list_models, load_codec

HERE = Path(__file__).resolve().parent
DATA = HERE.parent
# (source crop, quality): two qualities per model, both crops (one with odd sizes)
CASES = [("kodim19_crop128x96.png", 1), ("kodim19_crop75x53.png", 4)]
COMMAND = "PYTHONPATH=. python tests/data/golden/make_golden.py"


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def main() -> None:
    entries = []
    for info in list_models():
        if info.medium != "image":
            continue
        codec = load_codec(info.name)
        for src, q in CASES:
            img = np.asarray(Image.open(DATA / src).convert("RGB")).copy()
            data = codec.encode(img, q)
            name = f"{info.name}_{Path(src).stem}_q{q}.ncb"
            (HERE / name).write_bytes(data)
            dec = codec.decode(Container.from_bytes(data))
            entries.append({"file": name, "model": info.name, "weights": codec.digest,
                            "quality": q, "source": f"tests/data/{src}",
                            "shape": list(dec.shape), "ncb_sha256": sha256(data),
                            "rgb_sha256": sha256(np.ascontiguousarray(dec).tobytes())})
            print(name, len(data), "bytes", entries[-1]["rgb_sha256"][:16])
    manifest = {"command": COMMAND, "container_version": VERSION,
                "torch": torch.__version__, "files": entries}
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
