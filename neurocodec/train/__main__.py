"""``python -m neurocodec.train ARGS`` = ``neurocodec train image ARGS``; what torchrun runs:

    torchrun --nproc_per_node=2 -m neurocodec.train --data DIR --out runs/NAME ...
"""

import sys

from neurocodec.cli import main

sys.exit(main(["train", "image", *sys.argv[1:]]))
