"""Format-blind mutations: bytes, integers, JSON values and text lines.

Every function takes a ``random.Random`` (or Hypothesis' stand-in for one, whose draws it can
shrink) and is deterministic given its draws, so a case is reproduced from its seed alone.
"""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Callable
from typing import Any

# Integers that break size arithmetic: zero, one, sign and width boundaries.
INTERESTING = (0, 1, 2, 3, 7, 8, 15, 16, 31, 32, 63, 64, 127, 128, 255, 256, 1023, 1024, 4095,
               4096, 32767, 32768, 65535, 65536, (1 << 24) - 1, 1 << 24, (1 << 31) - 1, 1 << 31,
               (1 << 32) - 1, 1 << 32, (1 << 40) + 1, (1 << 63) - 1, 1 << 63, (1 << 64) - 1)
_WIDTHS = ((1, "B"), (2, "H"), (4, "I"), (8, "Q"))


def randbytes(rng: random.Random, n: int) -> bytes:
    return rng.getrandbits(8 * n).to_bytes(n, "little") if n else b""


def interesting_int(rng: random.Random) -> int:
    v = rng.choice(INTERESTING)
    if rng.random() < 0.3:
        v = -v
    if rng.random() < 0.2:
        v += rng.choice((-1, 1))
    return v


def _pos(rng: random.Random, n: int) -> int:
    """A position in ``0..n``, biased towards both ends (where headers and trailers are)."""
    r = rng.random()
    if r < 0.35:
        return min(n, rng.randrange(64))
    if r < 0.5:
        return max(0, n - rng.randrange(64))
    return rng.randrange(n + 1)


def flip(rng: random.Random, b: bytearray) -> None:
    for _ in range(rng.choice((1, 1, 2, 4))):
        if b:
            b[min(_pos(rng, len(b)), len(b) - 1)] ^= 1 << rng.randrange(8)


def overwrite(rng: random.Random, b: bytearray) -> None:
    if b:
        i = min(_pos(rng, len(b)), len(b) - 1)
        b[i] = rng.choice((0, 0xFF, 0x7F, 0x80, rng.randrange(256)))


def put_int(rng: random.Random, b: bytearray) -> None:
    """An interesting integer written over 1, 2, 4 or 8 bytes, either byte order."""
    width, code = rng.choice(_WIDTHS)
    if len(b) < width:
        return
    i = rng.randrange(len(b) - width + 1) if rng.random() < 0.5 else min(
        _pos(rng, len(b)), len(b) - width)
    v = interesting_int(rng) & ((1 << (8 * width)) - 1)
    b[i: i + width] = struct.pack(rng.choice("<>") + code, v)


def truncate(rng: random.Random, b: bytearray) -> None:
    del b[_pos(rng, len(b)):]


def extend(rng: random.Random, b: bytearray) -> None:
    n = rng.choice((1, 2, 4, 16, 100))
    junk = rng.choice((randbytes(rng, n), b"\0" * n, bytes(b[-n:]) * rng.randrange(1, 4)))
    b.extend(junk)


def insert(rng: random.Random, b: bytearray) -> None:
    i = _pos(rng, len(b))
    b[i:i] = randbytes(rng, rng.choice((1, 2, 3, 8)))


def delete(rng: random.Random, b: bytearray) -> None:
    i = _pos(rng, len(b))
    del b[i: i + rng.choice((1, 2, 4, 16, 64))]


def duplicate(rng: random.Random, b: bytearray) -> None:
    """A chunk of the file copied somewhere else in it (a repeated record or header)."""
    if not b:
        return
    i = rng.randrange(len(b))
    chunk = bytes(b[i: i + rng.choice((1, 4, 16, 64, 256))])
    j = _pos(rng, len(b))
    b[j:j] = chunk * rng.choice((1, 1, 2, 8))


def swap(rng: random.Random, b: bytearray) -> None:
    if len(b) < 2:
        return
    n = rng.choice((1, 2, 4, 16))
    i, j = rng.randrange(len(b)), rng.randrange(len(b))
    x, y = bytes(b[i: i + n]), bytes(b[j: j + n])
    b[j: j + len(y)] = x[: len(y)]
    b[i: i + len(x)] = y[: len(x)]


BYTE_OPS: tuple[Callable[[random.Random, bytearray], None], ...] = (
    flip, flip, overwrite, put_int, put_int, truncate, extend, insert, delete, duplicate, swap)


def mutate_bytes(rng: random.Random, data: bytes, max_ops: int = 4) -> bytes:
    """``data`` with 1..``max_ops`` stacked byte mutations."""
    b = bytearray(data)
    for _ in range(rng.randint(1, max_ops)):
        rng.choice(BYTE_OPS)(rng, b)
    return bytes(b)


def splice(rng: random.Random, a: bytes, b: bytes) -> bytes:
    """A prefix of ``a`` joined to a suffix of ``b`` (two valid files crossed)."""
    return a[: _pos(rng, len(a))] + b[_pos(rng, len(b)):]


# ------------------------------------------------------------------------------ JSON values

def nested(depth: int, kind: str = "[") -> str:
    """JSON text of ``depth`` nested arrays (or objects): built as text, since
    ``json.dumps`` would itself recurse that deep."""
    if kind == "[":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def crafted_json(rng: random.Random) -> str:
    """The JSON text of one hostile value: wrong type, huge or negative size, NaN/Infinity,
    deep nesting, very long or odd strings, big containers."""
    kind = rng.randrange(12)
    if kind == 0:
        return rng.choice(("null", "true", "false", "[]", "{}", '""', "0", "[[]]"))
    if kind == 1:
        return str(interesting_int(rng))
    if kind == 2:
        return rng.choice(("1e400", "-1e400", "NaN", "Infinity", "-Infinity", "1e308", "-0.0",
                           "0.5", "1.0", "2.5e-324", "123456789012345678901234567890"))
    if kind == 3:
        return nested(rng.choice((9, 64, 1000, 20_000)), rng.choice("[{"))
    if kind == 4:
        return json.dumps("x" * rng.choice((1, 17, 129, 1025, 70_000)))
    if kind == 5:
        return rng.choice(('"\\u0000"', '"\\ud800"', '"../../etc/passwd"', '"a/b"', '"."',
                           '"..\\\\x"', '"\u00e9\u00e9"', '"meta.json"', '"x.webp"',
                           '"a\\nb"', '"\\r"', '"\\u001b[2J"', '"x.webp\\n"'))
    if kind == 6:
        return json.dumps([interesting_int(rng) for _ in range(rng.choice((0, 1, 2, 3, 4, 9)))])
    if kind == 7:
        return "[" + ",".join(["0"] * rng.choice((256, 70_000))) + "]"
    if kind == 8:
        return json.dumps({"x": interesting_int(rng), "": None})
    if kind == 9:
        return json.dumps([rng.choice((0.5, -1.0, 1e30, 3))] * rng.choice((1, 2, 3, 4)))
    if kind == 10:
        return json.dumps(rng.choice(("hnerv", "nerv", "gsc", "image", "video", "splat",
                                      "hyperprior", "mlic", "0" * 16)))
    return json.dumps(rng.random() * 10 ** rng.randrange(-5, 12))


PLACEHOLDER = "\u0001FUZZ\u0001"


def paths(v: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (tuple of keys / indexes) into a JSON value, the root excluded."""
    out = []
    if isinstance(v, dict):
        for k, x in v.items():
            out.append(prefix + (k,))
            out += paths(x, prefix + (k,))
    elif isinstance(v, list):
        for i, x in enumerate(v[:8]):  # long lists (codebooks): their first items are enough
            out.append(prefix + (i,))
            out += paths(x, prefix + (i,))
    return out


def _at(v: Any, path: tuple) -> Any:
    for k in path:
        v = v[k]
    return v


def mutate_json(rng: random.Random, doc: Any, dumps: Callable[[Any], str] | None = None) -> str:
    """JSON text of ``doc`` with one value replaced by :func:`crafted_json`, deleted, or a
    key added (``dumps`` serialises the rest as the format's writer would)."""
    dumps = dumps or (lambda d: json.dumps(d, separators=(",", ":")))
    doc = json.loads(json.dumps(doc))
    ps = paths(doc)
    op = rng.randrange(4)
    if not ps or op == 0:  # the whole document
        return crafted_json(rng)
    path = rng.choice(ps)
    parent = _at(doc, path[:-1])
    value = parent[path[-1]]
    if op == 3 and type(value) in (int, float) and rng.random() < 0.5:
        # a size scaled: still plausible, so it passes type checks and meets the arithmetic
        parent[path[-1]] = type(value)(value * rng.choice((2, 8, 64, 1024, -1, 0.5)) +
                                       rng.choice((0, 1, -1)))
        return dumps(doc)
    if op == 1 and isinstance(parent, dict):
        del parent[path[-1]]
        return dumps(doc)
    if op == 2 and isinstance(parent, dict):
        parent[rng.choice(("extra", "", "x" * 200, path[-1] + "_"))] = PLACEHOLDER
    else:
        parent[path[-1]] = PLACEHOLDER
    return dumps(doc).replace(json.dumps(PLACEHOLDER), crafted_json(rng))


# ------------------------------------------------------------------------------ text lines

def crafted_token(rng: random.Random) -> str:
    """A hostile token for a text header (a size, a type name, a keyword)."""
    return rng.choice((str(interesting_int(rng)), "-1", "0", "1.5", "1e9", "nan", "", "x",
                       "9" * 40, "ascii", "list", "float", "uchar", "int", "double", "vertex",
                       "\t", "0x10", "+5", "A" * 300, "\u00e9"))


def mutate_lines(rng: random.Random, lines: list[str]) -> list[str]:
    """Header lines with one token replaced, or a line deleted, duplicated, moved or added."""
    lines = list(lines)
    if not lines:
        return [crafted_token(rng)]
    i = rng.randrange(len(lines))
    op = rng.randrange(6)
    if op == 0:
        toks = lines[i].split(" ")
        toks[rng.randrange(len(toks))] = crafted_token(rng)
        lines[i] = " ".join(toks)
    elif op == 1:
        del lines[i]
    elif op == 2:
        lines.insert(rng.randrange(len(lines) + 1), lines[i])
    elif op == 3:
        j = rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif op == 4:
        words = [rng.choice(lines[rng.randrange(len(lines))].split(" ") or [""])
                 for _ in range(rng.randint(1, 4))]
        lines.insert(i, " ".join(words + [crafted_token(rng)]))
    else:
        lines[i] = lines[i] + " " + crafted_token(rng)
    return lines
