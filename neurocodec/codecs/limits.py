"""Placeholder until the container branch lands (theirs wins on merge)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DecodeLimits:
    max_pixels: int = 1 << 25
    max_frames: int = 100_000
    max_gaussians: int = 1 << 24
