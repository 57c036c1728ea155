import pytest

from neurocodec.codecs.container import Container, write_atomic
from neurocodec.errors import BitstreamError, InputError


def sample() -> Container:
    return Container(codec="hyperprior", model="m", weights="0123456789abcdef", shape=[5, 7, 3],
                     meta={"quality": 2}, sections=[b"abc", b"", bytes(range(256)) * 10])


def test_round_trip():
    c = sample()
    d = Container.from_bytes(c.to_bytes())
    assert d == c


def test_every_truncation_raises():
    data = sample().to_bytes()
    for cut in range(len(data)):
        with pytest.raises(BitstreamError):
            Container.from_bytes(data[:cut])


def test_every_single_byte_corruption_raises():
    data = sample().to_bytes()
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x41
        with pytest.raises(BitstreamError):
            Container.from_bytes(bytes(bad))


def test_messages_name_the_problem():
    data = sample().to_bytes()
    with pytest.raises(BitstreamError, match="magic"):
        Container.from_bytes(b"XXXX" + data[4:])
    with pytest.raises(BitstreamError, match="version"):
        Container.from_bytes(data[:4] + b"\x07" + data[5:])
    with pytest.raises(BitstreamError, match="trailing"):
        Container.from_bytes(data + b"\0")
    huge = bytearray(data)
    huge[8:12] = (2**32 - 1).to_bytes(4, "little")  # absurd header length
    with pytest.raises(BitstreamError, match="absurd"):
        Container.from_bytes(bytes(huge))


def test_write_atomic_never_clobbers(tmp_path):
    p = tmp_path / "out.ncb"
    write_atomic(p, b"first")
    with pytest.raises(InputError, match="exists"):
        write_atomic(p, b"second")
    assert p.read_bytes() == b"first"
    write_atomic(p, b"second", force=True)
    assert p.read_bytes() == b"second"
    with pytest.raises(InputError):
        write_atomic(tmp_path / "missing_dir" / "x.ncb", b"x")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["out.ncb"]
