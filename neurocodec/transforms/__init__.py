"""Reusable network blocks."""

from neurocodec.transforms.attention import LinearAttention
from neurocodec.transforms.gdn import GDN, lower_bound
from neurocodec.transforms.metaformer import (
    LayerNorm2d,
    MetaFormerBlock,
    attention_block,
    conv_block,
)

__all__ = ["GDN", "LayerNorm2d", "LinearAttention", "MetaFormerBlock", "attention_block",
           "conv_block", "lower_bound"]
