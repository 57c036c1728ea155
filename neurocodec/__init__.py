"""neurocodec: learned compression for images (video and 3D Gaussian splats to come).

``neurocodec.encode`` / ``neurocodec.decode`` (see :mod:`neurocodec.api`) are imported on first
use, so ``import neurocodec`` stays light.
"""

from neurocodec.errors import BitstreamError, InputError, ModelError, NeurocodecError

__version__ = "0.1.0"
__all__ = ["BitstreamError", "InputError", "ModelError", "NeurocodecError", "__version__",
           "decode", "encode"]


def __getattr__(name: str):
    if name in ("encode", "decode"):
        from neurocodec import api

        return getattr(api, name)
    raise AttributeError(f"module 'neurocodec' has no attribute {name!r}")
