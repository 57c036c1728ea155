"""Format-aware mutations: change one field of a file and repair what guards it (checksums,
length fields, compression), so the case reaches the code behind those guards.

Each ``mutate_*`` takes a ``random.Random`` and the target's seeds and returns one fuzzed input.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import struct
import zipfile
import zlib
from typing import Any

from neurocodec.codecs.container import MAGIC, PREFIX, Container, uleb128
from neurocodec.fuzz import mutate as M

# ------------------------------------------------------------------------------ rANS streams

_RANS = struct.Struct("<BBHI")  # the header of neurocodec.entropy.rans


def rans_offset(data: bytes) -> int | None:
    """Where a whole rANS stream (its header consistent with its length) starts inside
    ``data`` — after a splat channel table or an array stream's table indexes — or None."""
    for off in range(0, min(len(data) - _RANS.size, 4096) + 1):
        v, _, lanes, _ = _RANS.unpack_from(data, off)
        if v != 1 or not 1 <= lanes <= 4096 or off + 8 + 4 * lanes > len(data):
            continue
        counts = struct.unpack_from(f"<{lanes}I", data, off + 8)
        if off + 8 + 4 * lanes + 2 * sum(counts) == len(data):
            return off
    return None


def _split(rng: random.Random, total: int, parts: int) -> list[int]:
    cuts = sorted(rng.randint(0, total) for _ in range(parts - 1))
    return [b - a for a, b in zip([0] + cuts, cuts + [total])]


def mutate_rans(rng: random.Random, data: bytes) -> bytes:
    """A rANS stream changed behind a consistent header: symbol count, precision, lane table
    and words, with the lane table kept summing to the words present (so the stream passes
    the header check and reaches the decoding kernel)."""
    off = rans_offset(data)
    if off is None:
        return M.mutate_bytes(rng, data)
    head, body = data[:off], data[off:]
    version, prec, lanes, n = _RANS.unpack_from(body)
    counts = list(struct.unpack_from(f"<{lanes}I", body, 8))
    words = bytearray(body[8 + 4 * lanes:])
    op = rng.randrange(8)
    if op == 0:
        n = rng.choice((0, 1, max(n - 1, 0), n + 1, n * 2)) if rng.random() < 0.7 else \
            M.interesting_int(rng) & 0xFFFFFFFF
    elif op == 1:
        prec = rng.choice((0, 1, 8, 15, 17, 31, 255))
    elif op == 2:  # other lane count, the same words spread over them
        lanes = rng.choice((1, 2, 3, 31, 33, 4095, 4096))
        counts = _split(rng, len(words) // 2, lanes)
    elif op == 3:
        counts = _split(rng, len(words) // 2, lanes)
    elif op == 4:  # words flipped or overwritten in place
        for _ in range(rng.randint(1, 4)):
            if words:
                i = rng.randrange(len(words))
                words[i] = rng.choice((words[i] ^ (1 << rng.randrange(8)), 0, 255))
    elif op == 5:  # words cut from the end of a lane
        k = rng.randrange(lanes)
        d = min(counts[k], rng.choice((1, 2, 8)))
        start = 2 * sum(counts[: k + 1]) - 2 * d
        del words[start: start + 2 * d]
        counts[k] -= d
    elif op == 6:  # words added to a lane
        k = rng.randrange(lanes)
        d = rng.choice((1, 2, 8))
        at = 2 * sum(counts[: k + 1])
        words[at:at] = M.randbytes(rng, 2 * d)
        counts[k] += d
    else:
        version = rng.choice((0, 2, 255))
    return head + _RANS.pack(version, prec, lanes, n & 0xFFFFFFFF) + struct.pack(f"<{lanes}I", *counts) + \
        bytes(words)


def mutate_section(rng: random.Random, data: bytes) -> bytes:
    if rng.random() < 0.6 and rans_offset(data) is not None:
        return mutate_rans(rng, data)
    return M.mutate_bytes(rng, data)


# ------------------------------------------------------------------------------ containers

def build_container(head: str | bytes, sections: list[bytes], version: int = 2,
                    n_sections: int | None = None) -> bytes:
    """A container with valid checksums around any header text and sections."""
    h = head.encode("utf-8", "surrogatepass") if isinstance(head, str) else head
    n = len(sections) if n_sections is None else n_sections
    parts = [PREFIX.pack(MAGIC, version, 0, n & 0xFFFF, len(h), zlib.crc32(h)), h]
    for s in sections:
        length = struct.pack("<I", len(s)) if version == 1 else uleb128(len(s))
        parts += [length, struct.pack("<I", zlib.crc32(s)), s]
    return b"".join(parts)


def _dumps(h: dict) -> str:
    return json.dumps(h, sort_keys=True, separators=(",", ":"))


def mutate_container(rng: random.Random, seeds: list[bytes]) -> bytes:
    """A ``.ncb`` file: raw bytes mutated (the checksums catch these), or — more often — one
    header value, the header text, a section or the section list changed behind valid
    checksums."""
    data = rng.choice(seeds)
    r = rng.random()
    if r < 0.15:
        return M.mutate_bytes(rng, data)
    if r < 0.2:
        return M.splice(rng, data, rng.choice(seeds))
    c = Container.from_bytes(data)
    h, secs = c.header(), list(c.sections)
    head: str | bytes = _dumps(h)
    version, n_sec = 2, None
    op = rng.randrange(10)
    if op <= 2:
        head = M.mutate_json(rng, h, _dumps)
    elif op == 3:
        head = M.mutate_bytes(rng, _dumps(h).encode())
    elif op <= 6 and secs:
        i = rng.randrange(len(secs))
        secs[i] = mutate_section(rng, secs[i])
    elif op == 7:
        other = list(Container.from_bytes(rng.choice(seeds)).sections) or [b""]
        k = rng.randrange(5)
        if k == 0 and secs:
            del secs[rng.randrange(len(secs))]
        elif k == 1 and secs:
            secs.insert(rng.randrange(len(secs) + 1), rng.choice(secs))
        elif k == 2 and len(secs) > 1:
            i, j = rng.sample(range(len(secs)), 2)
            secs[i], secs[j] = secs[j], secs[i]
        elif k == 3 and secs:
            secs[rng.randrange(len(secs))] = rng.choice(other)
        else:
            secs.append(rng.choice((b"", M.randbytes(rng, 9), rng.choice(other))))
    elif op == 8:  # a version-1 file (u32 lengths, no medium field)
        version = 1
        h.pop("medium", None)
        head = _dumps(h)
    else:
        n_sec = max(0, len(secs) + rng.choice((-1, 1, 1000, 65535)))
    return build_container(head, secs, version, n_sec)


def crafted_headers() -> list[bytes]:
    """Whole containers with hostile headers, beside the mutated ones."""
    good = {"medium": "image", "codec": "hyperprior", "model": "m", "weights": "",
            "shape": [5, 7, 3], "meta": {}}
    heads = ["[" * 20_000 + "]" * 20_000, '{"meta":' * 5000 + "{}" + "}" * 5000,
             _dumps(good).replace('"meta":{}', '"meta":' + M.nested(20_000)),
             _dumps(good).replace("[5,7,3]", "[1e400,7,3]"),
             _dumps(good).replace('"meta":{}', '"meta":{"a":NaN}'),
             _dumps(good).replace('"m"', '"' + "m" * 70_000 + '"'),
             _dumps(good).replace("[5,7,3]", "[" + ",".join(["1"] * 9) + "]"),
             _dumps(good).replace('"meta":{}', '"meta":{"a":"\\ud800"}')]
    return [build_container(h, []) for h in heads]


# ------------------------------------------------------------------------------ text headers

def split_at(data: bytes, marker: bytes) -> tuple[bytes, bytes] | None:
    i = data.find(marker)
    return None if i < 0 else (data[: i + len(marker)], data[i + len(marker):])


def mutate_ply(rng: random.Random, seeds: list[bytes]) -> bytes:
    """A PLY with its header lines changed (counts, types, names, order) and the binary body
    kept, cut or padded — or raw byte mutations anywhere."""
    data = rng.choice(seeds)
    parts = split_at(data, b"end_header\n")
    r = rng.random()
    if parts is None or r < 0.35:
        return M.mutate_bytes(rng, data) if r < 0.3 else M.splice(rng, data, rng.choice(seeds))
    head, body = parts
    lines = head.decode("ascii").split("\n")[:-2]  # without "end_header" and the empty tail
    op = rng.randrange(4)
    if op == 0:  # an element count: off by one, zero, huge, negative, not a number
        els = [i for i, ln in enumerate(lines) if ln.startswith("element ")]
        if els:
            i = rng.choice(els)
            name, count = lines[i].split()[1:3]
            new = rng.choice((str(int(count) + 1), str(int(count) - 1), "0",
                              M.crafted_token(rng), str(1 << 62)))
            lines[i] = f"element {name} {new}"
    elif op == 1:  # a property's type
        props = [i for i, ln in enumerate(lines) if ln.startswith("property ")]
        if props:
            i = rng.choice(props)
            t = rng.choice(("char", "uchar", "short", "int", "uint", "double", "float64",
                            "list uchar int", "int128", "half"))
            lines[i] = f"property {t} {lines[i].split()[-1]}"
    else:
        lines = M.mutate_lines(rng, lines)
    sep = "\r\n" if rng.random() < 0.05 else "\n"
    new_head = (sep.join(lines) + sep + "end_header" + sep).encode("ascii", "replace")
    k = rng.random()
    if k < 0.2:
        body = body[: M._pos(rng, len(body))]
    elif k < 0.3:
        body = body + M.randbytes(rng, rng.choice((1, 4, 62, 256)))
    return new_head + body


def mutate_y4m(rng: random.Random, seeds: list[bytes]) -> bytes:
    """A YUV4MPEG2 file with header tokens (size, rate, chroma, interlacing) or FRAME lines
    changed, or raw byte mutations."""
    data = rng.choice(seeds)
    parts = split_at(data, b"\n")
    if parts is None or rng.random() < 0.35:
        return M.mutate_bytes(rng, data)
    head, body = parts
    toks = head[:-1].decode("ascii").split(" ")
    op = rng.randrange(4)
    if op == 0 and len(toks) > 1:
        i = rng.randrange(1, len(toks))
        tag = toks[i][:1]
        toks[i] = tag + rng.choice((M.crafted_token(rng), "0", "-16", "65536", "65537",
                                    "16.5", "0:0", "1:0", "30000:1001", "mono", "mono16",
                                    "420p10", "444alpha", "411", "422", "t", "?"))
    elif op == 1:
        toks.insert(rng.randrange(1, len(toks) + 1),
                    rng.choice("WHFICAX") + rng.choice(("1", "8", "7", "420mpeg2", "1:1")))
    elif op == 2 and len(toks) > 1:
        del toks[rng.randrange(1, len(toks))]
    else:  # a FRAME line: parameters, a missing newline, another keyword
        i = body.find(b"FRAME\n", rng.randrange(max(len(body), 1)))
        i = body.find(b"FRAME\n") if i < 0 else i
        if i >= 0:
            repl = rng.choice((b"FRAME Ixyz\n", b"FRAME", b"FRAMX\n", b"FRAME\n\n",
                               b"FRAME " + b"x" * 300 + b"\n"))
            body = body[:i] + repl + body[i + 6:]
    return (" ".join(toks) + "\n").encode("ascii", "replace") + body


# ------------------------------------------------------------------------------ SPZ

_SPZ = struct.Struct("<IIIBBBB")


def _spz_fields(rng: random.Random, raw: bytes) -> bytes:
    """An SPZ header (16 plain bytes) with one field set to a hostile value."""
    if len(raw) < 16:
        return raw
    f = list(_SPZ.unpack_from(raw))
    i = rng.randrange(7)
    limit = 0xFFFFFFFF if i < 3 else 0xFF
    f[i] = rng.choice((f[i] + 1, max(f[i] - 1, 0), 0, 1, 4, 5, 25, limit,
                       M.interesting_int(rng) & limit))
    return _SPZ.pack(*f) + raw[16:]


def mutate_spz(rng: random.Random, seeds: list[bytes]) -> bytes:
    """SPZ: the gzip bytes mutated, or the payload inside the gzip stream (header fields,
    attribute bytes, extension records) mutated and compressed again; SPZ v4's plain header,
    table of contents and zstd streams likewise."""
    import imagecodecs

    data = rng.choice(seeds)
    r = rng.random()
    if r < 0.3:
        return M.mutate_bytes(rng, data)
    if r < 0.35:
        return M.splice(rng, data, rng.choice(seeds))
    if data[:2] == b"\x1f\x8b":
        raw = gzip.decompress(data)
        k = rng.randrange(4)
        if k == 0:
            raw = _spz_fields(rng, raw)
        elif k == 1:  # extension records behind the extensions flag
            recs = rng.choice((b"", struct.pack("<II", 0xADBE0001, 10) + M.randbytes(rng, 10),
                               struct.pack("<I", 0xADBE0001) + M.randbytes(rng, 10),
                               M.randbytes(rng, rng.choice((3, 8, 20)))))
            raw = raw[:14] + bytes([raw[14] | 2]) + raw[15:16] + recs + raw[16:]
        else:
            raw = M.mutate_bytes(rng, raw)
        if rng.random() < 0.1:  # two gzip members
            return gzip.compress(raw, mtime=0) + gzip.compress(raw[:7], mtime=0)
        return gzip.compress(raw, compresslevel=1, mtime=0)
    # v4: 32-byte header, [extensions], table of (compressed u64, uncompressed u64), streams
    raw = bytearray(data)
    if len(raw) < 32:
        return M.mutate_bytes(rng, data)
    n_streams, toc = raw[15], struct.unpack_from("<I", raw, 16)[0]
    k = rng.randrange(5)
    if k == 0:
        return _spz_fields(rng, bytes(raw))
    if k == 1:
        raw[15] = rng.choice((0, 1, 5, 6, 7, 255))
        return bytes(raw)
    if k == 2:
        struct.pack_into("<I", raw, 16, rng.choice((0, 31, 33, toc + 16, len(raw), 1 << 31)))
        return bytes(raw)
    entries = [struct.unpack_from("<QQ", raw, toc + 16 * i)
               for i in range(n_streams) if toc + 16 * i + 16 <= len(raw)]
    if not entries:
        return M.mutate_bytes(rng, data)
    i = rng.randrange(len(entries))
    if k == 3:  # a table entry
        c, u = entries[i]
        new = rng.choice(((c, u + 1), (c, max(u - 1, 0)), (c + 1, u), (1 << 63, u), (c, 1 << 40),
                          (0, u), (c, 0)))
        struct.pack_into("<QQ", raw, toc + 16 * i, *new)
        return bytes(raw)
    # a stream's content changed and compressed again (its table entry updated)
    off = toc + 16 * len(entries)
    starts = []
    for c, _ in entries:
        starts.append(off)
        off += c
    c, u = entries[i]
    body = bytes(raw[starts[i]: starts[i] + c])
    try:
        plain = imagecodecs.zstd_decode(body)
    except Exception:  # noqa: BLE001 - a seed stream that is not zstd: mutate it raw
        return M.mutate_bytes(rng, data)
    plain = M.mutate_bytes(rng, bytes(plain))
    comp = imagecodecs.zstd_encode(plain, level=1)
    struct.pack_into("<QQ", raw, toc + 16 * i, len(comp), len(plain) if rng.random() < 0.5 else u)
    return bytes(raw[: starts[i]]) + comp + bytes(raw[starts[i] + c:])


# ------------------------------------------------------------------------------ SOG (zip)

def zip_members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def make_zip(members: list[tuple[str, bytes]], deflate: bool = False) -> bytes:
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    import warnings

    with warnings.catch_warnings():  # duplicate names are a case, not a mistake
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(buf, "w", method) as zf:
            for name, b in members:
                zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), b,
                            compress_type=method)
    return buf.getvalue()


def _webp_dims(rng: random.Random, b: bytes) -> bytes:
    """A WebP whose header declares another size (lossless VP8L: 14 bits per side)."""
    b = bytearray(b)
    if len(b) >= 25 and b[12:16] == b"VP8L":
        w, h = rng.choice(((1, 1), (16384, 16384), (4, 4), (1, 16384), (64, 1), (8, 8)))
        bits = int.from_bytes(b[21:25], "little")
        bits = (bits & ~0xFFFFFFF) | (w - 1) | ((h - 1) << 14)
        b[21:25] = bits.to_bytes(4, "little")
    elif len(b) >= 30 and b[12:16] == b"VP8X":
        b[24:30] = M.randbytes(rng, 6)
    return bytes(b)


def mutate_sog_files(rng: random.Random, files: dict[str, bytes],
                     others: list[dict[str, bytes]]) -> list[tuple[str, bytes]]:
    """The members of a SOG: ``meta.json`` values crafted, a texture's bytes or declared size
    mutated, a member dropped, duplicated or taken from another SOG."""
    items = list(files.items())
    op = rng.randrange(7)
    if op <= 2:
        if op < 2:
            text = M.mutate_json(rng, json.loads(files["meta.json"]))
            new = text.encode("utf-8", "surrogatepass")
        else:
            new = M.mutate_bytes(rng, files["meta.json"])
        items = [(n, new if n == "meta.json" else b) for n, b in items]
    elif op == 3:
        i = rng.randrange(len(items))
        items[i] = (items[i][0], M.mutate_bytes(rng, items[i][1]))
    elif op == 4:
        i = rng.randrange(len(items))
        items[i] = (items[i][0], _webp_dims(rng, items[i][1]))
    elif op == 5:
        k = rng.randrange(3)
        i = rng.randrange(len(items))
        if k == 0:
            del items[i]
        elif k == 1:
            items.append(items[i])
        else:
            other = rng.choice(others)
            name = rng.choice(list(other))
            items = [(n, other[name] if n == items[i][0] else b) for n, b in items]
    else:
        items.append(("meta.json" if rng.random() < 0.3 else "../x.webp", M.randbytes(rng, 40)))
    return items


def mutate_sog(rng: random.Random, seeds: list[bytes]) -> bytes:
    """A ``.sog`` bundle: zip bytes mutated, or re-zipped with mutated members."""
    data = rng.choice(seeds)
    if rng.random() < 0.3:
        return M.mutate_bytes(rng, data)
    files = zip_members(data)
    others = [zip_members(s) for s in seeds]
    return make_zip(mutate_sog_files(rng, files, others), deflate=rng.random() < 0.3)


# ------------------------------------------------------------------------------ images

def png_chunks(data: bytes) -> list[tuple[bytes, bytes]] | None:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    out, pos = [], 8
    while pos + 8 <= len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        out.append((data[pos + 4: pos + 8], data[pos + 8: pos + 8 + n]))
        pos += 12 + n
    return out


def png_bytes(chunks: list[tuple[bytes, bytes]]) -> bytes:
    parts = [b"\x89PNG\r\n\x1a\n"]
    for typ, body in chunks:
        parts += [struct.pack(">I", len(body)), typ, body,
                  struct.pack(">I", zlib.crc32(typ + body))]
    return b"".join(parts)


def mutate_png(rng: random.Random, data: bytes) -> bytes:
    """A PNG changed behind valid chunk CRCs: IHDR fields, chunks dropped / repeated /
    reordered, the image data recompressed after mutation."""
    chunks = png_chunks(data)
    if not chunks:
        return M.mutate_bytes(rng, data)
    op = rng.randrange(4)
    if op == 0:
        ihdr = bytearray(chunks[0][1])
        if len(ihdr) == 13:
            k = rng.randrange(3)
            if k == 0:
                struct.pack_into(">II", ihdr, 0, *rng.choice(
                    ((0, 1), (1, 0), (1 << 31, 1), (65535, 65535), (12000, 12000), (1, 1 << 20),
                     (1, 1))))
            else:
                ihdr[8 + rng.randrange(5)] = rng.choice((0, 1, 2, 3, 4, 6, 8, 16, 255))
            chunks[0] = (b"IHDR", bytes(ihdr))
    elif op == 1:
        i = rng.randrange(len(chunks))
        k = rng.randrange(3)
        if k == 0:
            del chunks[i]
        elif k == 1:
            chunks.insert(i, chunks[i])
        else:
            j = rng.randrange(len(chunks))
            chunks[i], chunks[j] = chunks[j], chunks[i]
    elif op == 2:
        idat = [i for i, (t, _) in enumerate(chunks) if t == b"IDAT"]
        if idat:
            i = idat[0]
            try:
                raw = zlib.decompress(b"".join(chunks[j][1] for j in idat))
            except zlib.error:
                raw = b""
            chunks[i] = (b"IDAT", zlib.compress(M.mutate_bytes(rng, raw)))
            for j in reversed(idat[1:]):
                del chunks[j]
    else:
        chunks.insert(rng.randrange(1, len(chunks) + 1),
                      (rng.choice((b"tEXt", b"iCCP", b"PLTE", b"tRNS", b"acTL", b"zzZz")),
                       M.randbytes(rng, rng.choice((0, 3, 13, 300)))))
    return png_bytes(chunks)


def mutate_image_file(rng: random.Random, seeds: list[Any]) -> tuple:
    """``(extension, bytes[, frame])`` of an image file: PNG chunk-level mutations, JPEG/WebP
    size fields, raw mutations and splices of two formats; sometimes a frame asked for."""
    ext, data = rng.choice(seeds)[:2]
    if rng.random() < 0.15:
        return ext, _image_bytes(rng, ext, data, seeds), rng.choice((0, 1, 2, 255))
    return ext, _image_bytes(rng, ext, data, seeds)


def _image_bytes(rng: random.Random, ext: str, data: bytes, seeds: list[Any]) -> bytes:
    r = rng.random()
    if r < 0.1:
        return M.splice(rng, data, rng.choice(seeds)[1])
    if ext == ".png" and r < 0.55:
        return mutate_png(rng, data)
    if ext in (".jpg", ".webp") and r < 0.4:
        marker = b"\xff\xc0" if ext == ".jpg" else b"VP8"
        i = data.find(marker)
        if i >= 0:
            b = bytearray(data)
            j = i + (5 if ext == ".jpg" else 14)
            if j + 4 <= len(b):
                b[j: j + 4] = M.randbytes(rng, 4) if rng.random() < 0.5 else b"\xff\xff\xff\xff"
                return bytes(b)
    return M.mutate_bytes(rng, data)
