"""neurocodec: learned compression for images, video and 3D Gaussian splats."""

from neurocodec.errors import BitstreamError, InputError, ModelError, NeurocodecError

__version__ = "0.1.0"
__all__ = ["BitstreamError", "InputError", "ModelError", "NeurocodecError", "__version__"]
