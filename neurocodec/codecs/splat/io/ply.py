"""The standard 3DGS PLY (the reference implementation's ``point_cloud.ply``) and the PLY
header parser the PlayCanvas compressed PLY shares.

Layout (binary, one ``vertex`` element, every property ``float``)::

    x y z  [nx ny nz]  f_dc_0..2  f_rest_0..(3K-1)  opacity  scale_0..2  rot_0..3

* positions as is; ``scale_*`` are log standard deviations; ``opacity`` a logit;
  ``rot_0..3`` a quaternion (w, x, y, z), not necessarily normalised;
* ``f_rest`` is channel-major: ``f_rest_{c*K + k}`` is SH coefficient ``k+1`` of channel ``c``
  (K = 0, 3, 8, 15 for degree 0..3) — :class:`SplatScene` holds it coefficient-major.

Reading accepts binary little- and big-endian files, any property order, extra properties of
any scalar type (kept in ``scene.extra`` in file order) and skips other elements (with a
warning). ASCII PLYs and list properties are refused. The header's sizes are checked against
the file size before anything is allocated: a file must hold exactly the bytes its header
declares.

Writing emits the layout above (little-endian, ``float``), normals right after the position
when the scene carries ``nx, ny, nz``, other extras at the end — so reading a standard 3DGS PLY
and writing it back gives the same bytes.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurocodec.codecs.container import write_atomic
from neurocodec.errors import InputError

from ._common import DEFAULT_LIMITS, SH_COEFFS, DecodeLimits, SplatScene, bad, drop_nonfinite, load

# PLY type names (both spellings of the spec) -> numpy kind; the first name of each is the one
# written.
_TYPES = {"char": "i1", "uchar": "u1", "short": "i2", "ushort": "u2", "int": "i4", "uint": "u4",
          "float": "f4", "double": "f8", "int8": "i1", "uint8": "u1", "int16": "i2",
          "uint16": "u2", "int32": "i4", "uint32": "u4", "float32": "f4", "float64": "f8"}
_WRITE_NAMES = {"i1": "char", "u1": "uchar", "i2": "short", "u2": "ushort", "i4": "int",
                "u4": "uint", "f4": "float", "f8": "double"}
# A real header is a few kilobytes (62 properties of a degree-3 scene: ~1.5 KB); past this it
# is not a PLY header, and scanning further would only read a big file for nothing.
MAX_HEADER = 1 << 20
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

STANDARD = ("x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1",
            "scale_2", "rot_0", "rot_1", "rot_2", "rot_3")
NORMALS = ("nx", "ny", "nz")


@dataclass
class PlyElement:
    name: str
    count: int
    props: list[tuple[str, str]]  # (property name, numpy kind such as "f4")

    def dtype(self, endian: str) -> np.dtype:
        return np.dtype([(p, endian + k) for p, k in self.props])


def parse_header(data: bytes, src: str | Path) -> tuple[str, list[PlyElement], int]:
    """``(endian, elements, header_bytes)`` of a binary PLY, checked line by line and against
    ``len(data)``: the elements' rows must fill the file exactly."""
    if not data.startswith(b"ply\n") and not data.startswith(b"ply\r\n"):
        raise bad(src, "not a PLY file (no 'ply' magic line)")
    end = -1
    for marker in (b"end_header\n", b"end_header\r\n"):
        i = data.find(marker, 0, MAX_HEADER)
        if i >= 0 and (end < 0 or i < end):
            end, mlen = i, len(marker)
    if end < 0:
        raise bad(src, f"PLY header has no end_header line within {MAX_HEADER} bytes")
    header_len = end + mlen
    try:
        lines = data[:end].decode("ascii").splitlines()
    except UnicodeDecodeError:
        raise bad(src, "PLY header is not ASCII text") from None
    endian = None
    elements: list[PlyElement] = []
    for ln, raw in enumerate(lines[1:], start=2):
        parts = raw.split()
        if not parts or parts[0] in ("comment", "obj_info"):
            continue
        kw = parts[0]
        if kw == "format":
            if len(parts) != 3 or parts[2] != "1.0":
                raise bad(src, f"PLY header line {ln}: bad format line {raw.strip()[:60]!r}")
            if parts[1] == "ascii":
                raise bad(src, "ASCII PLY is not supported (splat scenes are binary PLYs; "
                               "convert it to binary_little_endian)")
            endian = {"binary_little_endian": "<", "binary_big_endian": ">"}.get(parts[1])
            if endian is None:
                raise bad(src, f"PLY header line {ln}: unknown format {parts[1][:40]!r}")
        elif kw == "element":
            if len(parts) != 3 or not _NAME.match(parts[1]) or not parts[2].isdigit():
                raise bad(src, f"PLY header line {ln}: bad element line {raw.strip()[:60]!r}")
            elements.append(PlyElement(parts[1], int(parts[2]), []))
        elif kw == "property":
            if not elements:
                raise bad(src, f"PLY header line {ln}: property before any element")
            if len(parts) >= 2 and parts[1] == "list":
                raise bad(src, f"PLY element {elements[-1].name!r} has a list property "
                               f"(a mesh, not a splat scene)")
            if len(parts) != 3 or parts[1] not in _TYPES or not _NAME.match(parts[2]):
                raise bad(src, f"PLY header line {ln}: bad property line {raw.strip()[:60]!r}")
            el = elements[-1]
            if any(p == parts[2] for p, _ in el.props):
                raise bad(src, f"PLY element {el.name!r} declares property {parts[2]!r} twice")
            el.props.append((parts[2], _TYPES[parts[1]]))
        else:
            raise bad(src, f"PLY header line {ln}: unknown keyword {kw[:40]!r}")
    if endian is None:
        raise bad(src, "PLY header has no format line")
    names = [e.name for e in elements]
    if len(set(names)) != len(names):
        raise bad(src, "PLY header declares an element twice")
    # Python ints: a lying count (2^60 vertices) cannot overflow, and is caught here, before
    # any array is made.
    need = sum(e.count * e.dtype(endian).itemsize for e in elements)
    have = len(data) - header_len
    if need != have:
        what = "truncated" if need > have else "has trailing bytes"
        raise bad(src, f"PLY {what}: its header declares {need} bytes of data, "
                       f"the file holds {have}")
    return endian, elements, header_len


def element_arrays(data: bytes, endian: str, elements: list[PlyElement],
                   header_len: int) -> dict[str, np.ndarray]:
    """Structured arrays (read-only views into ``data``), one per element."""
    out, off = {}, header_len
    for e in elements:
        dt = e.dtype(endian)
        out[e.name] = np.frombuffer(data, dt, e.count, off)
        off += e.count * dt.itemsize
    return out


def _col(v: np.ndarray, name: str) -> np.ndarray:
    return v[name].astype(np.float32)


def decode_ply(data: bytes, src: str | Path = "<ply>",
               limits: DecodeLimits = DEFAULT_LIMITS) -> SplatScene:
    """A standard 3DGS PLY — or a PlayCanvas compressed PLY, recognised by its elements — from
    its bytes. NaN/Inf Gaussians are dropped with a warning."""
    endian, elements, header_len = parse_header(data, src)
    from . import compressed_ply  # the compressed layout shares this parser

    if compressed_ply.is_compressed(elements):
        return compressed_ply.decode(data, endian, elements, header_len, src)
    arrays = element_arrays(data, endian, elements, header_len)
    if "vertex" not in arrays:
        raise bad(src, "PLY has no 'vertex' element")
    skipped = [e.name for e in elements if e.name != "vertex"]
    if skipped:
        warnings.warn(f"{src}: ignoring PLY elements {', '.join(skipped)} (only 'vertex' "
                      f"holds Gaussians)", stacklevel=2)
    v = arrays["vertex"]
    kinds = dict(next(e for e in elements if e.name == "vertex").props)
    missing = [p for p in STANDARD if p not in kinds]
    if missing:
        raise bad(src, f"not a 3DGS PLY: vertex element lacks {', '.join(missing[:6])}"
                       f"{' ...' if len(missing) > 6 else ''}")
    for p in STANDARD:
        if kinds[p] not in ("f4", "f8"):
            raise bad(src, f"3DGS PLY property {p!r} must be float, not {kinds[p]}")
    rest = [p for p in kinds if p.startswith("f_rest_")]
    n_rest = len(rest)
    if n_rest not in (3 * k for k in SH_COEFFS.values()):
        raise bad(src, f"PLY has {n_rest} f_rest properties (expected 0, 9, 24 or 45)")
    want_rest = [f"f_rest_{i}" for i in range(n_rest)]
    if sorted(rest) != sorted(want_rest):
        raise bad(src, f"PLY f_rest properties are not f_rest_0..f_rest_{n_rest - 1}")
    n, k = len(v), n_rest // 3
    if n_rest:
        # channel-major in the file (f_rest_{c*K+k}) -> coefficient-major [N, K, 3]
        flat = np.stack([_col(v, p) for p in want_rest], axis=1)
        sh_rest = np.ascontiguousarray(flat.reshape(n, 3, k).transpose(0, 2, 1))
    else:
        sh_rest = np.zeros((n, 0, 3), np.float32)
    used = set(STANDARD) | set(want_rest)
    extra = {p: v[p].astype(v.dtype[p].newbyteorder("=")) for p in kinds if p not in used}
    scene = SplatScene(
        means=np.stack([_col(v, "x"), _col(v, "y"), _col(v, "z")], axis=1),
        scales=np.stack([_col(v, f"scale_{i}") for i in range(3)], axis=1),
        quats=np.stack([_col(v, f"rot_{i}") for i in range(4)], axis=1),
        opacities=_col(v, "opacity"),
        sh_dc=np.stack([_col(v, f"f_dc_{i}") for i in range(3)], axis=1),
        sh_rest=sh_rest, extra=extra)
    return drop_nonfinite(scene, src)


def read_ply(path: str | Path, limits: DecodeLimits = DEFAULT_LIMITS) -> SplatScene:
    """Read a standard 3DGS PLY or a PlayCanvas compressed PLY."""
    return decode_ply(load(path), path, limits)


def _layout(scene: SplatScene) -> tuple[list[tuple[str, np.ndarray]], set[str]]:
    """(property name, column) in the standard 3DGS order, and the names of the 3DGS
    attributes among them (always written as float)."""
    k = scene.sh_rest.shape[1]
    extra = dict(scene.extra)
    clash = [p for p in extra if p in STANDARD or p.startswith("f_rest_")]
    if clash:
        raise InputError(f"cannot write PLY: extra property {clash[0]!r} clashes with a 3DGS "
                         f"attribute")
    cols: list[tuple[str, np.ndarray]] = [(a, scene.means[:, i]) for i, a in enumerate("xyz")]
    if all(p in extra for p in NORMALS):
        cols += [(p, extra.pop(p)) for p in NORMALS]
    cols += [(f"f_dc_{i}", scene.sh_dc[:, i]) for i in range(3)]
    rest = [f"f_rest_{c * k + j}" for c in range(3) for j in range(k)]
    cols += [(rest[c * k + j], scene.sh_rest[:, j, c]) for c in range(3) for j in range(k)]
    cols += [("opacity", scene.opacities)]
    cols += [(f"scale_{i}", scene.scales[:, i]) for i in range(3)]
    cols += [(f"rot_{i}", scene.quats[:, i]) for i in range(4)]
    cols += list(extra.items())
    return cols, set(STANDARD) | set(rest)


def encode_ply(scene: SplatScene) -> bytes:
    """The standard 3DGS PLY bytes of ``scene`` (binary little-endian, float attributes)."""
    cols, std = _layout(scene)
    fields, lines = [], []
    for name, col in cols:
        kind = "f4" if name in std else col.dtype.kind + str(col.dtype.itemsize)
        if kind not in _WRITE_NAMES:
            raise InputError(f"cannot write PLY: extra property {name!r} has dtype "
                             f"{col.dtype}, which PLY cannot store")
        if not _NAME.match(name):
            raise InputError(f"cannot write PLY: property name {name[:40]!r} is not a PLY name")
        fields.append((name, "<" + kind))
        lines.append(f"property {_WRITE_NAMES[kind]} {name}\n")
    rows = np.empty(scene.n, np.dtype(fields))
    for name, col in cols:
        rows[name] = col
    header = ("ply\nformat binary_little_endian 1.0\n"
              f"element vertex {scene.n}\n" + "".join(lines) + "end_header\n")
    return header.encode("ascii") + rows.tobytes()


def write_ply(path: str | Path, scene: SplatScene, force: bool = False) -> None:
    """Write ``scene`` as a standard 3DGS PLY, atomically (never over an existing file
    unless ``force``)."""
    write_atomic(path, encode_ply(scene), force=force)
