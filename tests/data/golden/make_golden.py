"""Write the golden vectors: small .ncb files from every shipped image model and a manifest with the SHA-256 of each file's decoded
RGB bytes (uint8 ``[H, W, 3]``, C order). tests/test_determinism.py decodes them and compares.

    PYTHONPATH=. python tests/data/golden/make_golden.py

Files already in the manifest are kept as they are: the first ones were written by container
version 1 (before v2 existed) and prove that v1 files still decode. Only models without
vectors get new ones (in the container version this build writes, recorded per file). Delete a
model's entries on purpose only (a decoder change meant to change its pixels).
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
    path = HERE / "manifest.json"
    old = json.loads(path.read_text()) if path.exists() else {"files": []}
    entries = [{"container_version": old.get("container_version", 1), **e}
               for e in old["files"]]
    have = {e["model"] for e in entries}
    for info in list_models():
        if info.medium != "image" or info.name in have:
            continue
        codec = load_codec(info.name)
        for src, q in CASES:
            img = np.asarray(Image.open(DATA / src).convert("RGB")).copy()
            data = codec.encode(img, q)
            name = f"{info.name}_{Path(src).stem}_q{q}.ncb"
            (HERE / name).write_bytes(data)
            dec = codec.decode(Container.from_bytes(data))
            entries.append({"file": name, "model": info.name, "weights": codec.digest,
                            "container_version": VERSION, "torch": torch.__version__,
                            "quality": q, "source": f"tests/data/{src}",
                            "shape": list(dec.shape), "ncb_sha256": sha256(data),
                            "rgb_sha256": sha256(np.ascontiguousarray(dec).tobytes())})
            print(name, len(data), "bytes", entries[-1]["rgb_sha256"][:16])
    manifest = {"command": COMMAND, "torch_first": old.get("torch", torch.__version__),
                "files": entries}
    path.write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
