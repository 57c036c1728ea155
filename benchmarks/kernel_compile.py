"""Compile the Triton rANS kernels to cubin for sm_80 and sm_90 (no GPU needed) and print the
registers and spills ptxas reports: the numbers in docs/kernels.md.

    env -u TRITON_INTERPRET python benchmarks/kernel_compile.py [--json]
"""

from neurocodec.kernels.compile_check import main

if __name__ == "__main__":
    main()
