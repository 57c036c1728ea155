"""Compile the Triton rANS kernels for real GPUs without one: PTX and cubin for a given
``GPUTarget`` through ``triton.compile``, and the registers and spills ptxas reports.

Must run with ``TRITON_INTERPRET`` unset (the interpreter replaces ``@triton.jit`` functions
with objects ``triton.compile`` cannot take): tests call :func:`main` in a subprocess;
``benchmarks/kernel_compile.py`` prints the table recorded in docs/kernels.md.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile

ARCHS = (80, 90)
NUM_WARPS = 1  # the kernels' BLOCK is 32 lanes: one warp per program


def kernel_specs() -> dict:
    """``name -> (jit function, signature, constexprs)`` for every Triton kernel we ship."""
    from neurocodec.entropy.tables import LUT_SHIFT
    from neurocodec.kernels import rans_triton as k

    i32p, i64p = "*i32", "*i64"
    dec_sig = {"words_ptr": i32p, "seg_start_ptr": i64p, "seg_end_ptr": i64p, "idx_ptr": i32p,
               "cdf_ptr": i32p, "cdf_stride": "i32", "len_ptr": i32p, "off_ptr": i32p,
               "lut_ptr": i32p, "lut_stride": "i32", "out_ptr": i32p, "status_ptr": i32p,
               "n": "i32", "lanes": "i32", "steps": "i32"}
    dec_const = {"PREC": 16, "LUT_SHIFT": LUT_SHIFT, "SEARCH_STEPS": k.SEARCH_STEPS,
                 "BLOCK": k.BLOCK}
    enc_sig = {"sym_ptr": i32p, "idx_ptr": i32p, "cdf_ptr": i32p, "cdf_stride": "i32",
               "len_ptr": i32p, "off_ptr": i32p, "out_ptr": i32p, "pos_ptr": i64p,
               "state_ptr": i64p, "cap": "i32", "n": "i32", "lanes": "i32", "steps": "i32"}
    enc_const = {"PREC": 16, "BLOCK": k.BLOCK}
    specs = {"_decode_kernel": (k._decode_kernel, dec_sig, dec_const),
             "_encode_kernel": (k._encode_kernel, enc_sig, enc_const)}
    extra = getattr(k, "compile_specs", None)  # kernels added later describe themselves
    if extra is not None:
        specs.update(extra())
    return specs


def _ptxas_usage(ptx: str, arch: int) -> dict:
    """Registers and spill bytes: ptxas -v on the kernel's PTX with Triton's own flags."""
    from triton.backends.nvidia.compiler import get_ptxas, sm_arch_from_capability

    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "k.ptx")
        with open(src, "w") as f:
            f.write(ptx)
        sm = sm_arch_from_capability(arch)
        r = subprocess.run([get_ptxas(arch).path, "-lineinfo", "-v", "--regAllocOptLevel=2",
                            f"--gpu-name={sm}", src, "-o", os.path.join(d, "k.o")],
                           capture_output=True, text=True, check=True)
    log = r.stderr + r.stdout
    regs = re.search(r"Used (\d+) registers", log)
    spill = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", log)
    stack = re.search(r"(\d+) bytes stack frame", log)
    return {"registers": int(regs.group(1)) if regs else None,
            "spill_stores": int(spill.group(1)) if spill else None,
            "spill_loads": int(spill.group(2)) if spill else None,
            "stack_frame": int(stack.group(1)) if stack else None}


def _cubin_registers(cubin: bytes) -> int | None:
    """Registers per thread of the cubin Triton built (cuobjdump), to cross-check ptxas -v."""
    from triton import knobs

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "k.cubin")
        with open(path, "wb") as f:
            f.write(cubin)
        r = subprocess.run([knobs.nvidia.cuobjdump.path, "--dump-resource-usage", path],
                           capture_output=True, text=True)
    m = re.search(r"REG:(\d+)", r.stdout)
    return int(m.group(1)) if m else None


def compile_all(archs=ARCHS) -> list[dict]:
    """Compile every kernel for every arch; one record per (kernel, arch)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    rows = []
    for name, (fn, sig, const) in kernel_specs().items():
        full = dict(sig, **{k: "constexpr" for k in const})
        for arch in archs:
            ck = triton.compile(ASTSource(fn=fn, signature=full, constexprs=const),
                                target=GPUTarget("cuda", arch, 32),
                                options={"num_warps": NUM_WARPS})
            cubin = ck.asm["cubin"]
            row = {"kernel": name, "arch": f"sm_{arch}", "cubin_bytes": len(cubin),
                   "cubin_is_elf": cubin[:4] == b"\x7fELF",
                   "ptx_target": re.search(r"\.target\s+(\S+)", ck.asm["ptx"]).group(1),
                   "shared": ck.metadata.shared, "num_warps": ck.metadata.num_warps}
            row.update(_ptxas_usage(ck.asm["ptx"], arch))
            row["cubin_registers"] = _cubin_registers(cubin)
            rows.append(row)
    return rows


def main() -> None:
    if os.environ.get("TRITON_INTERPRET") == "1":
        sys.exit("unset TRITON_INTERPRET: the interpreter cannot compile kernels")
    rows = compile_all()
    if "--json" in sys.argv:
        print(json.dumps(rows))
        return
    import triton

    print(f"triton {triton.__version__}; num_warps={NUM_WARPS}")
    print(f"{'kernel':24s} {'arch':6s} {'regs':>5s} {'spill st/ld':>12s} {'stack':>6s} "
          f"{'cubin B':>8s} {'cuobjdump regs':>14s}")
    for r in rows:
        print(f"{r['kernel']:24s} {r['arch']:6s} {r['registers']!s:>5s} "
              f"{r['spill_stores']!s:>5s}/{r['spill_loads']!s:<6s} {r['stack_frame']!s:>6s} "
              f"{r['cubin_bytes']:8d} {r['cubin_registers']!s:>14s}")


if __name__ == "__main__":
    main()
