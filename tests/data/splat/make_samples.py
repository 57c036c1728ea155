"""Rebuild the genuine-byte samples in this folder from ../shared/data/splats (see README.md).

Run from the repository root: ``python tests/data/splat/make_samples.py ../shared/data/splats``.
Each sample keeps the source file's own bytes for its first Gaussians; only the counts in its
header change. The splat-transform outputs are made by the commands listed in README.md.
"""

from __future__ import annotations

import re
import struct
import sys
from pathlib import Path

import imagecodecs

OUT = Path(__file__).parent


def ply_prefix(src: Path, dst: Path, counts: dict[str, int]) -> None:
    """The first ``counts[element]`` rows of each element of a binary PLY."""
    data = src.read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode("ascii")
    sizes = {"float": 4, "uint": 4, "uchar": 1}
    elements = []  # (name, count, row bytes)
    for line in header.splitlines():
        p = line.split()
        if p[0] == "element":
            elements.append([p[1], int(p[2]), 0])
        elif p[0] == "property":
            elements[-1][2] += sizes[p[1]]
    body, off = b"", end
    for name, count, row in elements:
        body += data[off:off + counts[name] * row]
        off += count * row
        header = re.sub(rf"element {name} \d+", f"element {name} {counts[name]}", header)
    dst.write_bytes(header.encode("ascii") + body)


def spz_v4_prefix(src: Path, dst: Path, n: int) -> None:
    """The first ``n`` Gaussians of a v4 SPZ: its streams decompressed, cut, recompressed."""
    data = src.read_bytes()
    num, deg = struct.unpack_from("<I", data, 8)[0], data[12]
    ns, toc = data[15], struct.unpack_from("<I", data, 16)[0]
    per = [9, 1, 3, 3, 4, (0, 9, 24, 45)[deg]]
    off, streams = toc + 16 * ns, []
    for i in range(ns):
        c, u = struct.unpack_from("<QQ", data, toc + 16 * i)
        raw = imagecodecs.zstd_decode(data[off:off + c], out=u)
        assert len(raw) == per[i] * num
        streams.append(imagecodecs.zstd_encode(raw[:per[i] * n], level=12))
        off += c
    head = bytearray(data[:32])
    struct.pack_into("<I", head, 8, n)
    toc_b = b"".join(struct.pack("<QQ", len(s), per[i] * n) for i, s in enumerate(streams))
    dst.write_bytes(bytes(head) + toc_b + b"".join(streams))


if __name__ == "__main__":
    root = Path(sys.argv[1])
    ply_prefix(root / "ply/small_sh3.ply", OUT / "small_sh3_256.ply", {"vertex": 256})
    ply_prefix(root / "ply/biker_sh0.ply", OUT / "biker_300.ply", {"vertex": 300})
    ply_prefix(root / "ply/flowers_lod3_sh2.ply", OUT / "flowers_200.ply", {"vertex": 200})
    ply_prefix(root / "raw/biker.compressed.ply", OUT / "biker_512.compressed.ply",
               {"chunk": 2, "vertex": 512})
    ply_prefix(root / "ply/luma_seal_sh0.ply", OUT / "luma_seal_300.ply", {"vertex": 300})
    (OUT / "luma_seal_300.splat").write_bytes((root / "raw/luma-seal.splat").read_bytes()[:9600])
    spz_v4_prefix(root / "raw/biker.spz", OUT / "biker_300_rub.spz", 300)
