"""A file read once, front to back, out of a layer's tar stream, made seekable: every byte
read from it is recorded (in memory up to a bound, on disk beyond it), so a reader may seek
back to anything already passed, and several readers may read the same file in turn.

Seeking forward is lazy: the bytes in between are read (and recorded) only when something
after them is asked for. Nothing is recorded twice, and nothing beyond what was read."""

from __future__ import annotations

import io
import tempfile
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["MEMORY_LIMIT", "Rewindable"]

# What one file may hold in memory while it is read; the rest goes to a temporary file.
MEMORY_LIMIT = 32 << 20
_STEP = 1 << 20  # the most read from the source at once, however far a seek went
# Small, so that a reader asking for a file's first bytes (its magic) makes the source give
# up little more than those; large reads pass the buffer by.
_BUFFER = 4096


class _Recording:
    """The bytes read so far: the first `limit` in memory, the rest in a temporary file."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._memory = bytearray()
        self._disk: io.BufferedRandom | None = None
        self.size = 0

    def append(self, data: bytes) -> None:
        room = self._limit - len(self._memory)
        if room > 0:
            self._memory += data[:room]
        rest = data[max(room, 0) :]
        if rest:
            if self._disk is None:
                self._disk = tempfile.TemporaryFile()
            self._disk.seek(0, io.SEEK_END)
            self._disk.write(rest)
        self.size += len(data)

    def read_into(self, at: int, into: memoryview) -> int:
        """Copy what was recorded from `at` on into `into` (once: no bytes in between)."""
        length = min(len(into), self.size - at)
        if length <= 0:
            return 0
        in_memory = max(0, min(length, len(self._memory) - at))
        if in_memory:
            with memoryview(self._memory) as memory:
                into[:in_memory] = memory[at : at + in_memory]
        if in_memory < length:
            assert self._disk is not None  # past the memory part: it spilled
            self._disk.seek(at + in_memory - len(self._memory))
            view = into[in_memory:length]
            while view:
                count = self._disk.readinto(view)
                if not count:
                    break
                view = view[count:]
        return length

    def close(self) -> None:
        self._memory = bytearray()
        if self._disk is not None:
            self._disk.close()
            self._disk = None


class _Raw(io.RawIOBase):
    def __init__(self, source: IO[bytes], size: int, memory_limit: int) -> None:
        self._source = source
        self._size = size
        self._recording = _Recording(memory_limit)
        self._position = 0
        self._exhausted = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._position + offset
        elif whence == io.SEEK_END:
            target = self._size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if target < 0:
            raise ValueError("negative seek position")
        self._position = target
        return target

    def _catch_up(self, end: int) -> None:
        """Read from the source (recording it) until `end` is recorded or the source ends."""
        while self._recording.size < end and not self._exhausted:
            chunk = self._source.read(min(end - self._recording.size, _STEP))
            if not chunk:
                self._exhausted = True
                break
            self._recording.append(chunk)

    def readinto(self, buffer: WriteableBuffer) -> int:
        with memoryview(buffer) as view, view.cast("B") as into:
            self._catch_up(self._position + len(into))
            count = self._recording.read_into(self._position, into)
        self._position += count
        return count

    def close(self) -> None:
        self._recording.close()
        super().close()


class Rewindable(io.BufferedReader):
    """`source` (`size` bytes, forward only) as a seekable file; close it to drop the recording."""

    def __init__(self, source: IO[bytes], size: int, memory_limit: int = MEMORY_LIMIT) -> None:
        super().__init__(_Raw(source, size, memory_limit), buffer_size=_BUFFER)
