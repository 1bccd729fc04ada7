import hashlib
import random
import struct
import zlib

import pytest

from portside.storage.hashstate import HashStateInvalid, ResumableHash

DATA = random.Random(7).randbytes(3 * 1024 + 17)
# Around the block sizes (64, 128) and their multiples, plus the ends.
EDGES = [0, 1, 2, 55, 56, 111, 112, 119, 1000, len(DATA) - 1, len(DATA)]
POINTS = sorted(set(EDGES) | {n + d for n in (64, 128, 192, 256, 1024, 2048) for d in (-1, 0, 1)})


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
@pytest.mark.parametrize("cut", POINTS)
def test_export_and_restore_at_any_point_matches_hashlib(algorithm, cut):
    first = ResumableHash(algorithm)
    first.update(DATA[:cut])
    assert first.size == cut
    assert first.hexdigest() == hashlib.new(algorithm, DATA[:cut]).hexdigest()
    resumed = ResumableHash.restore(first.export())
    assert resumed.size == cut and resumed.name == algorithm
    resumed.update(DATA[cut:])
    assert resumed.digest() == hashlib.new(algorithm, DATA).digest()


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
@pytest.mark.parametrize("seed", range(25))
def test_many_random_splits_through_several_restores(algorithm, seed):
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(len(DATA)), rng.randint(1, 8)))
    running = ResumableHash(algorithm)
    previous = 0
    for cut in [*cuts, len(DATA)]:
        running.update(memoryview(DATA)[previous:cut])
        running = ResumableHash.restore(running.export())
        previous = cut
    assert running.hexdigest() == hashlib.new(algorithm, DATA).hexdigest()


def test_digest_leaves_the_hash_running_and_copies_are_independent():
    h = ResumableHash()
    h.update(b"hello ")
    twin = h.copy()
    assert h.hexdigest() == hashlib.sha256(b"hello ").hexdigest()
    h.update(b"world")
    twin.update(bytearray(b"there"))
    assert h.hexdigest() == hashlib.sha256(b"hello world").hexdigest()
    assert twin.hexdigest() == hashlib.sha256(b"hello there").hexdigest()


def test_large_input():
    data = random.Random(1).randbytes(5 * 1024 * 1024 + 3)
    h = ResumableHash()
    h.update(data[:4097])
    h = ResumableHash.restore(h.export())
    h.update(data[4097:])
    assert h.hexdigest() == hashlib.sha256(data).hexdigest()


def _reseal(body: bytes) -> bytes:
    return body + struct.pack(">I", zlib.crc32(body))


def test_restore_refuses_states_it_cannot_trust():
    h = ResumableHash()
    h.update(b"x" * 70)
    state = h.export()
    flipped = bytearray(state)
    flipped[5] ^= 1
    with pytest.raises(HashStateInvalid, match="checksum"):
        ResumableHash.restore(bytes(flipped))
    with pytest.raises(HashStateInvalid, match="version"):
        ResumableHash.restore(_reseal(b"\x09" + state[1:-4]))
    with pytest.raises(HashStateInvalid, match="algorithm"):
        ResumableHash.restore(_reseal(state[:1] + b"\x07" + state[2:-4]))
    with pytest.raises(HashStateInvalid, match="length"):
        ResumableHash.restore(_reseal(state[:-5]))
    with pytest.raises(HashStateInvalid):
        ResumableHash.restore(state[:10])
    with pytest.raises(HashStateInvalid):
        ResumableHash.restore(b"")
    with pytest.raises(ValueError):
        ResumableHash("md5")


def test_update_from_an_offset_hashes_the_rest_only():
    h = ResumableHash()
    h.update(DATA, 100)
    h.update(bytearray(DATA), len(DATA) - 5)
    h.update(DATA, len(DATA))
    assert h.hexdigest() == hashlib.sha256(DATA[100:] + DATA[-5:]).hexdigest()
