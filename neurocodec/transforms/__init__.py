"""Reusable network blocks."""

from neurocodec.transforms.gdn import GDN, lower_bound

__all__ = ["GDN", "lower_bound"]
