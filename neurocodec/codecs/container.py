"""The neurocodec file container (format in docs/container.md).

``magic | version | reserved | n_sections | header_len | header_crc | header JSON | sections``.
Version 2 sections are ``ULEB128 length | u32 crc32 | bytes``; version 1 (still read) had a
u32 length. Every field is validated before anything sized by the file is allocated; what the
fields mean for one medium is checked by its codec (see :mod:`neurocodec.codecs.limits`).
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neurocodec.codecs.limits import check_int_list, check_str
from neurocodec.errors import BitstreamError, InputError

MAGIC = b"NCDC"
VERSION = 2
READS = (1, 2)
PREFIX = struct.Struct("<4sBBHII")  # magic, version, reserved, n_sections, header_len, header_crc
SECTION_V1 = struct.Struct("<II")  # length, crc32
CRC = struct.Struct("<I")
MAX_HEADER = 1 << 16
MAX_SECTIONS = {1: 256, 2: (1 << 16) - 1}
MAX_SIZE = 1 << 40  # shape entries and section lengths: beyond any file this reads
MAX_ULEB = 6  # bytes of a ULEB128 length: 42 bits, enough for MAX_SIZE
# Which media exist is the registry's business: the container only insists on a plain name.
_MEDIUM = re.compile(r"[a-z][a-z0-9_-]{0,15}")
FIELDS = {1: frozenset({"codec", "model", "weights", "shape", "meta"}),
          2: frozenset({"medium", "codec", "model", "weights", "shape", "meta"})}
MAX_NAME = 128
MAX_SHAPE_LEN = 8
MAX_META_DEPTH = 8
MAX_META_STR = 1024
_WEIGHTS = re.compile(r"[0-9a-f]{0,64}")  # empty: a model validated during training


@dataclass
class Container:
    """A decoded container: header fields and the raw section payloads."""

    codec: str
    model: str
    weights: str  # hex digest of the weights that made the file
    shape: list[int]  # original shape, e.g. [H, W, C] for images
    meta: dict = field(default_factory=dict)
    sections: list[bytes] = field(default_factory=list)
    medium: str = "image"  # last, so positional callers of the v1 signature keep working

    def header(self) -> dict:
        return {"medium": self.medium, "codec": self.codec, "model": self.model,
                "weights": self.weights, "shape": list(self.shape), "meta": self.meta}

    def to_bytes(self) -> bytes:
        """The version-2 file. Raises ValueError on fields no reader would accept."""
        try:
            check_header(self.header(), VERSION)
        except BitstreamError as e:
            raise ValueError(str(e)) from None
        if len(self.sections) > MAX_SECTIONS[VERSION]:
            raise ValueError(f"at most {MAX_SECTIONS[VERSION]} sections")
        head = json.dumps(self.header(), sort_keys=True, separators=(",", ":")).encode()
        if len(head) > MAX_HEADER:
            raise ValueError("container header too large")
        parts = [PREFIX.pack(MAGIC, VERSION, 0, len(self.sections), len(head), zlib.crc32(head)),
                 head]
        for s in self.sections:
            if len(s) > MAX_SIZE:
                raise ValueError(f"section of {len(s)} bytes is over {MAX_SIZE}")
            parts += [uleb128(len(s)), CRC.pack(zlib.crc32(s)), bytes(s)]
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> Container:
        """Read a version 1 or 2 file (v1 has no ``medium``: it is an image)."""
        data = memoryview(bytes(data))
        version, n_sec, h, pos = _read_head(data)
        sections = []
        for i in range(n_sec):
            if version == 1:
                if pos + SECTION_V1.size > len(data):
                    raise BitstreamError(f"truncated file: section {i} header missing")
                length, crc = SECTION_V1.unpack_from(data, pos)
                pos += SECTION_V1.size
            else:
                length, pos = read_uleb128(data, pos, f"section {i} length")
                if pos + CRC.size > len(data):
                    raise BitstreamError(f"truncated file: section {i} checksum missing")
                (crc,) = CRC.unpack_from(data, pos)
                pos += CRC.size
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
                   shape=list(h["shape"]), meta=h["meta"], sections=sections,
                   medium=h.get("medium", "image"))


def _read_head(data) -> tuple[int, int, dict, int]:
    """The prefix and header of a file (or of its first bytes): ``(version, section count,
    checked header fields, offset of the first section)``."""
    if len(data) < PREFIX.size:
        raise BitstreamError(f"not a neurocodec file: {len(data)} bytes is too short")
    magic, version, reserved, n_sec, hlen, hcrc = PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise BitstreamError("not a neurocodec file (bad magic)")
    if version not in READS:
        raise BitstreamError(f"unsupported container version {version} "
                             f"(this build reads {', '.join(map(str, READS))})")
    if reserved != 0 or n_sec > MAX_SECTIONS[version] or hlen > MAX_HEADER:
        raise BitstreamError("corrupted container: absurd header or section count")
    pos = PREFIX.size
    if pos + hlen > len(data):
        raise BitstreamError("truncated file: header cut short")
    head = bytes(data[pos : pos + hlen])
    if zlib.crc32(head) != hcrc:
        raise BitstreamError("corrupted file: header checksum mismatch")
    h = parse_header_json(head)
    check_header(h, version)
    return version, n_sec, h, pos + hlen


def read_header(path: str | Path) -> dict:
    """The checked header fields of a ``.ncb`` file (``medium`` filled in for version 1),
    reading only its first bytes: what a batch decode needs to name each output before any
    work. The sections are checked when the file is decoded."""
    p = _check_input(path)
    try:
        with open(p, "rb") as f:
            data = f.read(PREFIX.size + MAX_HEADER)
    except OSError as e:
        raise InputError(f"{p}: cannot read ({e.strerror})") from None
    h = _read_head(data)[2]
    return {"medium": "image", **h}


def uleb128(n: int) -> bytes:
    """Unsigned LEB128: 7 bits a byte, low first, high bit set on all but the last."""
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def read_uleb128(data, pos: int, what: str) -> tuple[int, int]:
    """``(value, next position)``. Only the shortest encoding of a value is accepted, so one
    file has one parse; at most :data:`MAX_ULEB` bytes and :data:`MAX_SIZE`."""
    value = 0
    for k in range(MAX_ULEB):
        if pos + k >= len(data):
            raise BitstreamError(f"truncated file: {what} cut short")
        b = data[pos + k]
        value |= (b & 0x7F) << (7 * k)
        if not b & 0x80:
            if b == 0 and k > 0:
                raise BitstreamError(f"corrupted file: {what} is not minimally encoded")
            if value > MAX_SIZE:
                raise BitstreamError(f"corrupted file: {what} {value} is over {MAX_SIZE}")
            return value, pos + k + 1
    raise BitstreamError(f"corrupted file: {what} longer than {MAX_ULEB} bytes")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    d = dict(pairs)
    if len(d) != len(pairs):
        raise ValueError("duplicate key")
    return d


def parse_header_json(head: bytes) -> dict:
    """Strict JSON: UTF-8 only, no NaN/Infinity, no duplicate keys (two readers must never
    see two different headers in one file)."""
    try:
        h = json.loads(head.decode("utf-8"), parse_constant=_reject_constant,
                       object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError):  # RecursionError: a deeply nested crafted header
        raise BitstreamError("corrupted file: header is not valid JSON") from None
    if type(h) is not dict:
        raise BitstreamError("corrupted file: header is not a JSON object")
    return h


def check_header(h: dict, version: int) -> None:
    """Type and bound checks of every header field common to all media."""
    keys = set(h)
    if keys != FIELDS[version]:
        missing, extra = sorted(FIELDS[version] - keys), sorted(keys - FIELDS[version])
        what = f"missing {missing}" if missing else f"unknown {extra}"
        raise BitstreamError(f"invalid header: fields {what}"[:120])
    if version >= 2:
        if not _MEDIUM.fullmatch(check_str(h["medium"], "header.medium", 16)):
            raise BitstreamError(f"invalid header.medium {h['medium']!r} (expected a lowercase "
                                 "name)")
    check_str(h["codec"], "header.codec", MAX_NAME)
    check_str(h["model"], "header.model", MAX_NAME)
    if type(h["weights"]) is not str or not _WEIGHTS.fullmatch(h["weights"]):
        raise BitstreamError("invalid header.weights (expected up to 64 hex digits)")
    check_int_list(h["shape"], "header.shape", (1, MAX_SHAPE_LEN), 1, MAX_SIZE)
    if type(h["meta"]) is not dict:
        raise BitstreamError("invalid header.meta (expected an object)")
    _check_meta(h["meta"], "meta", 0)


def _check_meta(v: Any, where: str, depth: int) -> None:
    """Plain JSON data of bounded depth and string length; each codec checks its own keys."""
    if depth > MAX_META_DEPTH:
        raise BitstreamError(f"invalid header: {where[:60]} nested deeper than {MAX_META_DEPTH}")
    if type(v) is dict:
        for k, x in v.items():
            check_str(k, f"key in {where[:60]}", MAX_NAME)
            _check_meta(x, f"{where}.{k}", depth + 1)
    elif type(v) is list:
        for i, x in enumerate(v):
            _check_meta(x, f"{where}[{i}]", depth + 1)
    elif type(v) is str:
        if len(v) > MAX_META_STR:
            raise BitstreamError(f"invalid header: {where[:60]} is a string over "
                                 f"{MAX_META_STR} characters")
    elif type(v) is int:
        if not -(1 << 63) <= v < 1 << 63:
            raise BitstreamError(f"invalid header: {where[:60]} is an integer beyond 64 bits")
    elif type(v) is float:
        if not math.isfinite(v):  # 1e400 parses as inf: no literal needed to smuggle one in
            raise BitstreamError(f"invalid header: {where[:60]} is not a finite number")
    elif v is not None and type(v) is not bool:
        raise BitstreamError(f"invalid header: {where[:60]} has an unsupported type")


def _check_input(path: str | Path, max_bytes: int | None = None) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if not p.is_file():
        raise InputError(f"{p}: not a regular file")
    if max_bytes is not None and p.stat().st_size > max_bytes:
        raise InputError(f"{p}: file too large ({p.stat().st_size} bytes)")
    return p


def read_file(path: str | Path, max_bytes: int = 1 << 31) -> bytes:
    """Read a whole input file, with user-facing errors."""
    p = _check_input(path, max_bytes)
    try:
        return p.read_bytes()
    except OSError as e:
        raise InputError(f"{p}: cannot read ({e.strerror})") from None


def check_output(path: str | Path, force: bool = False, folder_ok: bool = False) -> Path:
    """Whether ``path`` can be written, before any work: not a folder (unless ``folder_ok``:
    a folder of frames), an existing output only with ``force``, in a folder that exists and
    is writable. Returns that folder."""
    p = Path(path)
    if p.is_dir() and not folder_ok:
        raise InputError(f"{p}: is a folder; give the output file's name")
    if p.exists() and not force:
        raise InputError(f"{p}: output exists (use --force to overwrite)")
    d = p.parent if str(p.parent) else Path(".")
    if not d.is_dir():
        what = "is not a folder" if d.exists() else "does not exist"
        raise InputError(f"{d}: output folder {what}")
    if not os.access(d, os.W_OK | os.X_OK):
        raise InputError(f"{d}: output folder is not writable")
    return d


def umask_mode(folder: bool = False) -> int:
    """The mode ``open`` (``mkdir`` for a folder) gives a new file under the current umask:
    what an output renamed from a 0600 temporary file (0700 folder) must be set to."""
    mask = os.umask(0o022)
    os.umask(mask)
    return (0o777 if folder else 0o666) & ~mask


def write_atomic(path: str | Path, data: bytes, force: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename; the file gets the
    mode the umask gives (as ``open`` would), not the temporary file's 0600.

    Without ``force`` an existing file is never replaced. On any failure the temporary file
    is removed and nothing at ``path`` changes.
    """
    p = Path(path)
    d = check_output(p, force)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=d)
    except OSError as e:
        raise InputError(f"{d}: cannot write ({e.strerror})") from None
    try:
        os.fchmod(fd, umask_mode())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def stale_temporaries(folder: str | Path, names: set[str]) -> list[Path]:
    """The temporary files and folders a killed :func:`write_atomic` (or a medium's folder
    writer) left in ``folder`` beside outputs named ``names``: ``.NAME.XXXXXXXX.tmp``. A
    ``.NAME.*.old`` folder (the previous output during a folder replace) is never one: it
    may hold the only copy."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    found = []
    for e in entries:
        if e.name.startswith(".") and e.name.endswith(".tmp"):
            name, _, rand = e.name[1:-4].rpartition(".")
            if name in names and len(rand) == 8:  # tempfile's 8 random characters
                found.append(Path(e.path))
    return found
