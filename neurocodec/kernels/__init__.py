"""GPU (Triton) kernels for the rANS format of docs/entropy-format.md, bit-exact with the CPU
coder. Tests run them on the CPU with ``TRITON_INTERPRET=1``."""
