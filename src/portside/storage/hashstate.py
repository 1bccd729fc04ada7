"""Resumable SHA-256 and SHA-512: a running hash whose state can be saved as bytes and
continued later, in another process or on another instance.

An upload's digest is computed as its bytes arrive, and an upload may continue in a later
request served elsewhere. hashlib cannot export its state, and on an object store the
bytes already sent cannot be read back (parts of an unfinished multipart upload are not
readable), so the running state itself is what is saved. OpenSSL's low-level
`SHA256_*`/`SHA512_*` functions work on a plain, documented struct (`SHA256_CTX`,
`SHA512_CTX` in <openssl/sha.h>) that we can read and fill: the hashing still runs in
OpenSSL's assembly, and outside the GIL (ctypes releases it during every foreign call),
so large updates overlap other requests when called from a worker thread.

The exported form is independent of the machine and of the struct's in-memory layout
(all integers big-endian)::

    version (1) | algorithm (1) | chaining words (32 or 64) | bytes hashed (8)
    | the unprocessed tail of the current block (bytes hashed mod block size, 0..block-1)
    | CRC-32 of everything before it (4)

`restore` checks the version, the algorithm, the length and the checksum, and raises
`HashStateInvalid` rather than continue from a state it cannot trust.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import struct
import zlib
from dataclasses import dataclass
from typing import ClassVar

__all__ = ["HashStateInvalid", "ResumableHash", "supported"]

_VERSION = 1


class HashStateInvalid(ValueError):
    """A saved hash state that cannot be continued (corrupt, truncated or unknown)."""


class _Sha256Ctx(ctypes.Structure):
    _fields_: ClassVar = [
        ("h", ctypes.c_uint32 * 8),
        ("Nl", ctypes.c_uint32),  # bits hashed, low word
        ("Nh", ctypes.c_uint32),  # bits hashed, high word
        ("data", ctypes.c_ubyte * 64),  # the current block's bytes so far
        ("num", ctypes.c_uint32),
        ("md_len", ctypes.c_uint32),
        # Never read: room to spare should a future OpenSSL grow the struct.
        ("_spare", ctypes.c_ubyte * 64),
    ]


class _Sha512Ctx(ctypes.Structure):
    _fields_: ClassVar = [
        ("h", ctypes.c_uint64 * 8),
        ("Nl", ctypes.c_uint64),
        ("Nh", ctypes.c_uint64),
        ("data", ctypes.c_ubyte * 128),
        ("num", ctypes.c_uint32),
        ("md_len", ctypes.c_uint32),
        ("_spare", ctypes.c_ubyte * 64),
    ]


@dataclass(frozen=True, slots=True)
class _Algorithm:
    name: str
    code: int
    ctx: type[ctypes.Structure]
    word: str  # struct format of one chaining word
    word_bits: int
    block: int
    digest_size: int
    init: ctypes._NamedFuncPointer
    update: ctypes._NamedFuncPointer
    final: ctypes._NamedFuncPointer


def _library() -> ctypes.CDLL:
    name = ctypes.util.find_library("crypto")
    for candidate in (name, "libcrypto.so.3", "libcrypto.so"):
        if not candidate:
            continue
        try:
            return ctypes.CDLL(candidate)
        except OSError:
            continue
    raise RuntimeError("OpenSSL's libcrypto is needed for resumable hashing but was not found")


@functools.cache
def _algorithms() -> dict[str, _Algorithm]:
    lib = _library()
    found: dict[str, _Algorithm] = {}
    for name, code, ctx, word, bits, block, size in (
        ("sha256", 1, _Sha256Ctx, "I", 32, 64, 32),
        ("sha512", 2, _Sha512Ctx, "Q", 64, 128, 64),
    ):
        prefix = name.upper()
        try:
            init, update, final = (getattr(lib, f"{prefix}_{f}") for f in ("Init", "Update", "Final"))
        except AttributeError as exc:
            raise RuntimeError(f"this libcrypto no longer exports {prefix}_Init/Update/Final") from exc
        pointer = ctypes.POINTER(ctx)
        init.argtypes, init.restype = [pointer], ctypes.c_int
        update.argtypes, update.restype = [pointer, ctypes.c_void_p, ctypes.c_size_t], ctypes.c_int
        final.argtypes, final.restype = [ctypes.c_char_p, pointer], ctypes.c_int
        found[name] = _Algorithm(name, code, ctx, word, bits, block, size, init, update, final)
    for algorithm in found.values():
        _self_test(algorithm)
    return found


def _self_test(algorithm: _Algorithm) -> None:
    """Refuse to run on a libcrypto whose struct is not the one described above."""
    data = bytes(range(256)) * 3
    running = ResumableHash(algorithm.name, _algorithm=algorithm)
    running.update(data[:131])
    running = _restore(running.export(), {algorithm.name: algorithm})
    running.update(data[131:])
    if running.digest() != hashlib.new(algorithm.name, data).digest():
        raise RuntimeError(f"libcrypto's {algorithm.name.upper()}_CTX is not laid out as expected")


def supported(algorithm: str) -> bool:
    return algorithm in ("sha256", "sha512")


class ResumableHash:
    """A running SHA-256 or SHA-512 whose state `export`s to bytes and `restore`s from them.

    Not safe for concurrent use: one caller (or one worker thread at a time) updates it."""

    def __init__(self, algorithm: str = "sha256", *, _algorithm: _Algorithm | None = None):
        if _algorithm is None:
            if not supported(algorithm):
                raise ValueError(f"no resumable {algorithm}")
            _algorithm = _algorithms()[algorithm]
        self._alg = _algorithm
        self._ctx = _algorithm.ctx()
        _algorithm.init(ctypes.byref(self._ctx))

    @property
    def name(self) -> str:
        return self._alg.name

    @property
    def size(self) -> int:
        """How many bytes have been hashed."""
        ctx = self._ctx
        bits = (ctx.Nh << self._alg.word_bits) | ctx.Nl
        return int(bits) >> 3

    def update(self, data: bytes | bytearray | memoryview, start: int = 0) -> None:
        """Hash `data[start:]`, without copying it when `data` is bytes."""
        if not isinstance(data, bytes):
            data, start = bytes(memoryview(data)[start:]), 0
        length = len(data) - start
        if length <= 0:
            return
        address = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value
        assert address is not None
        self._alg.update(ctypes.byref(self._ctx), address + start, length)

    def copy(self) -> ResumableHash:
        twin = ResumableHash(self._alg.name, _algorithm=self._alg)
        ctypes.memmove(ctypes.byref(twin._ctx), ctypes.byref(self._ctx), ctypes.sizeof(self._ctx))
        return twin

    def digest(self) -> bytes:
        """The digest of everything hashed so far; this hash can go on being updated."""
        out = ctypes.create_string_buffer(self._alg.digest_size)
        finished = self.copy()  # Final pads and spoils the struct; keep ours running
        self._alg.final(out, ctypes.byref(finished._ctx))
        return out.raw

    def hexdigest(self) -> str:
        return self.digest().hex()

    def export(self) -> bytes:
        alg, ctx = self._alg, self._ctx
        size = self.size
        pending = size % alg.block
        body = (
            struct.pack(">BB", _VERSION, alg.code)
            + struct.pack(f">8{alg.word}", *ctx.h)
            + struct.pack(">Q", size)
            + bytes(ctx.data[:pending])
        )
        return body + struct.pack(">I", zlib.crc32(body))

    @classmethod
    def restore(cls, state: bytes) -> ResumableHash:
        """Continue from `export`'s bytes; raises `HashStateInvalid` when they are unusable."""
        return _restore(state, _algorithms())


def _restore(state: bytes, known: dict[str, _Algorithm]) -> ResumableHash:
    if len(state) < 2 + 4 or state[0] != _VERSION:
        raise HashStateInvalid("unknown hash state version")
    alg = next((a for a in known.values() if a.code == state[1]), None)
    if alg is None:
        raise HashStateInvalid(f"unknown hash algorithm code {state[1]}")
    words = struct.calcsize(f">8{alg.word}")
    head = 2 + words + 8
    if len(state) < head + 4:
        raise HashStateInvalid("hash state is truncated")
    (size,) = struct.unpack_from(">Q", state, 2 + words)
    pending = size % alg.block
    if len(state) != head + pending + 4:
        raise HashStateInvalid("hash state has the wrong length")
    body, (crc,) = state[:-4], struct.unpack(">I", state[-4:])
    if zlib.crc32(body) != crc:
        raise HashStateInvalid("hash state fails its checksum")
    restored = ResumableHash(alg.name, _algorithm=alg)
    ctx = restored._ctx
    ctx.h[:] = struct.unpack_from(f">8{alg.word}", state, 2)
    bits = size << 3
    mask = (1 << alg.word_bits) - 1
    ctx.Nl, ctx.Nh = bits & mask, bits >> alg.word_bits
    ctx.data[:pending] = state[head : head + pending]
    ctx.num = pending
    return restored
