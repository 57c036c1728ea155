"""The neurocodec file container (format in docs/container.md).

``magic | version | n_sections | header_len | header_crc | header JSON | sections``, each
section ``length | crc32 | bytes``. Every field is validated before anything is allocated.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from neurocodec.errors import BitstreamError, InputError

MAGIC = b"NCDC"
VERSION = 1
PREFIX = struct.Struct("<4sBBHII")  # magic, version, reserved, n_sections, header_len, header_crc
SECTION = struct.Struct("<II")  # length, crc32
MAX_HEADER = 1 << 16
MAX_SECTIONS = 256
REQUIRED = {"codec": str, "model": str, "weights": str, "shape": list, "meta": dict}


@dataclass
class Container:
    """A decoded container: header fields and the raw section payloads."""

    codec: str
    model: str
    weights: str  # hex digest of the weights that made the file
    shape: list[int]  # original shape, e.g. [H, W, C] for images
    meta: dict = field(default_factory=dict)
    sections: list[bytes] = field(default_factory=list)
    medium: str = "image"

    def header(self) -> dict:
        return {"codec": self.codec, "model": self.model, "weights": self.weights,
                "shape": list(self.shape), "meta": self.meta}

    def to_bytes(self) -> bytes:
        if len(self.sections) > MAX_SECTIONS:
            raise ValueError(f"at most {MAX_SECTIONS} sections")
        head = json.dumps(self.header(), sort_keys=True, separators=(",", ":")).encode()
        if len(head) > MAX_HEADER:
            raise ValueError("container header too large")
        parts = [PREFIX.pack(MAGIC, VERSION, 0, len(self.sections), len(head), zlib.crc32(head)),
                 head]
        for s in self.sections:
            parts += [SECTION.pack(len(s), zlib.crc32(s)), bytes(s)]
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> Container:
        data = memoryview(bytes(data))
        if len(data) < PREFIX.size:
            raise BitstreamError(f"not a neurocodec file: {len(data)} bytes is too short")
        magic, version, reserved, n_sec, hlen, hcrc = PREFIX.unpack_from(data)
        if magic != MAGIC:
            raise BitstreamError("not a neurocodec file (bad magic)")
        if version != VERSION:
            raise BitstreamError(f"unsupported container version {version} (this build reads {VERSION})")
        if reserved != 0 or n_sec > MAX_SECTIONS or hlen > MAX_HEADER:
            raise BitstreamError("corrupted container: absurd header or section count")
        pos = PREFIX.size
        if pos + hlen > len(data):
            raise BitstreamError("truncated file: header cut short")
        head = bytes(data[pos : pos + hlen])
        if zlib.crc32(head) != hcrc:
            raise BitstreamError("corrupted file: header checksum mismatch")
        try:
            h = json.loads(head)
        except ValueError:
            raise BitstreamError("corrupted file: header is not valid JSON") from None
        for k, t in REQUIRED.items():
            if not isinstance(h, dict) or not isinstance(h.get(k), t):
                raise BitstreamError(f"corrupted file: header field {k!r} missing or invalid")
        if not all(isinstance(v, int) and 0 < v < 1 << 20 for v in h["shape"]):
            raise BitstreamError(f"corrupted file: invalid shape {h['shape']}")
        pos += hlen
        sections = []
        for i in range(n_sec):
            if pos + SECTION.size > len(data):
                raise BitstreamError(f"truncated file: section {i} header missing")
            length, crc = SECTION.unpack_from(data, pos)
            pos += SECTION.size
            if pos + length > len(data):
                raise BitstreamError(f"truncated file: section {i} needs {length} bytes, "
                                     f"{len(data) - pos} left")
            payload = bytes(data[pos : pos + length])
            if zlib.crc32(payload) != crc:
                raise BitstreamError(f"corrupted file: section {i} checksum mismatch")
            sections.append(payload)
            pos += length
        if pos != len(data):
            raise BitstreamError(f"corrupted file: {len(data) - pos} unexpected trailing bytes")
        return cls(codec=h["codec"], model=h["model"], weights=h["weights"],
                   shape=list(h["shape"]), meta=h["meta"], sections=sections)


def read_file(path: str | Path, max_bytes: int = 1 << 31) -> bytes:
    """Read a whole input file, with user-facing errors."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if not p.is_file():
        raise InputError(f"{p}: not a regular file")
    if p.stat().st_size > max_bytes:
        raise InputError(f"{p}: file too large ({p.stat().st_size} bytes)")
    try:
        return p.read_bytes()
    except OSError as e:
        raise InputError(f"{p}: cannot read ({e.strerror})") from None


def write_atomic(path: str | Path, data: bytes, force: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    Without ``force`` an existing file is never replaced. On any failure the temporary file
    is removed and nothing at ``path`` changes.
    """
    p = Path(path)
    if p.exists() and not force:
        raise InputError(f"{p}: output exists (use --force to overwrite)")
    if p.exists() and p.is_dir():
        raise InputError(f"{p}: is a directory")
    d = p.parent if str(p.parent) else Path(".")
    if not d.is_dir():
        raise InputError(f"{d}: output directory does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=d)
    except OSError as e:
        raise InputError(f"{d}: cannot write ({e.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
