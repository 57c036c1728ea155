#!/usr/bin/env bash
# The GPU checks of issue 15 as ONE device call (~5 minutes on an H200; the `device` tool's
# 15-minute budget allows a rerun). From the repository root, on the GPU machine:
#
#     bash benchmarks/gpu_checks.sh        # writes its logs and JSON under $OUT (or /tmp/gpu)
#
# It uses the machine's own python3 (torch, triton, numba, numpy there; nothing installed) with
# this checkout on PYTHONPATH, and runs, each under its own timeout so one hang cannot eat the
# call: the versions and the GPU; benchmarks/entropy_gpu.py with its defaults (4,096 streams x
# 4,096 symbols, every result checked equal to the CPU coder's); and an image decoded with the
# model on the GPU (the batch kernel decoding its streams) against the CPU decode, bit for bit.
set -uo pipefail
OUT=${OUT:-/tmp/gpu}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
unset TRITON_INTERPRET

nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
python3 - > "$OUT/versions.txt" 2>&1 <<'EOF'
import numba, numpy, torch, triton
print("torch", torch.__version__, "triton", triton.__version__, "numba", numba.__version__,
      "numpy", numpy.__version__, "gpu", torch.cuda.get_device_name())
EOF
cat "$OUT/versions.txt"

timeout 300 python3 benchmarks/entropy_gpu.py 2>&1 | tee "$OUT/entropy_gpu.txt"

timeout 180 python3 - 2>&1 <<'EOF' | tee "$OUT/image_gpu_decode.txt"
import time

import numpy as np
import torch
from PIL import Image

from neurocodec.codecs.container import Container
from neurocodec.codecs.registry import load_codec

img = np.asarray(Image.open("tests/data/images/kodim19_crop128x96.png").convert("RGB"))
img = np.ascontiguousarray(np.tile(img, (6, 6, 1)))  # 576 x 768
codec = load_codec("hyperprior-vr4")
for q in (0, 5):
    data = codec.encode(img, q)
    codec.model.cpu()
    t = time.perf_counter()
    cpu = codec.decode(Container.from_bytes(data))
    t_cpu = time.perf_counter() - t
    codec.model.cuda()
    codec.decode(Container.from_bytes(data))  # compile the kernels
    torch.cuda.synchronize()
    t = time.perf_counter()
    gpu = codec.decode(Container.from_bytes(data))
    torch.cuda.synchronize()
    t_gpu = time.perf_counter() - t
    print(f"q{q}: {len(data)} B; decode CPU {t_cpu:.3f} s, model on GPU {t_gpu:.3f} s; "
          f"pixels equal: {np.array_equal(cpu, gpu)}")
EOF
ls -l "$OUT"
