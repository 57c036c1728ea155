"""Typed exceptions shared by every part of neurocodec."""


class NeurocodecError(Exception):
    """Base class of every error neurocodec raises on purpose."""


class BitstreamError(NeurocodecError):
    """An encoded stream or container is truncated, corrupted, or does not match the decoder."""


class InputError(NeurocodecError):
    """A user-supplied file or argument cannot be used (missing, unreadable, wrong kind)."""


class ModelError(NeurocodecError):
    """A model name, quality level or weights file is unknown or invalid."""


class BaselineUnavailable(NeurocodecError):
    """An optional classical codec (a binary or library) is not present on this machine."""


class ExternalToolError(NeurocodecError):
    """An external encoder/decoder (ffmpeg, VTM, HM) failed; the message carries its stderr."""


class TrainingError(NeurocodecError):
    """A training run cannot go on (e.g. its loss became NaN); the last good checkpoint stays."""
