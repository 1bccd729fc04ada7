"""The blob store on a local filesystem.

Layout under the root directory::

    blobs/<algorithm>/<first two hex digits>/<hex>   published content; never changed once there
    uploads/<upload id>                              staging file of one upload session
    quarantine/<algorithm>/<hex>                     content scrub took out of service

Staging and published files share one filesystem, so publishing is a rename: a reader
sees either no blob or the whole, fsync'ed blob. Several processes may serve the same
root; an upload is held with `flock` while a request appends to it.

Uploads are refused while the filesystem's free space is under a reserve (kept for the
database and for uploads in flight). A write that finds the disk full all the same is
answered as the same refusal: the bytes of the request that no one acknowledged are cut
off at once, giving their space back, and the upload continues from its acknowledged
bytes once there is room again.

A writer's `state` is its running SHA-256 (see `hashstate`), so the request after a
restart, or one served by another process, continues the hash instead of reading the
staged bytes again.

A chunk is acknowledged once its bytes are in the kernel's page cache, without an fsync:
they outlive any restart of Portside, and only a crash of the machine loses them. The
state a chunk leaves names the boot of the machine's kernel it was written under::

    "U" | boot id (16 bytes) | exported hash state

and a request under another boot (after a machine crash, or on another machine sharing
the directory) hashes the staged bytes again instead of trusting that state. Bytes lost
or garbled in a crash then make the completion fail its digest check (or the upload be
lost when the file came back shorter); they are never published under the digest the
client asked for. Only publishing fsyncs. A bare hash state (no "U") was fsync'ed before
it was saved, and is trusted under any boot.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import fcntl
import hashlib
import os
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import anyio.to_thread

from portside.errors import DigestInvalid, InsufficientStorage
from portside.oci.digest import Digest
from portside.storage.driver import BlobWriter, StagedUpload, StoredBlob, UploadLost, UploadSealed
from portside.storage.hashstate import HashStateInvalid, ResumableHash

__all__ = ["FsBlobStore"]

# Appends are gathered up to this size before one write+hash call off the event loop.
_WRITE_BATCH = 4 * 1024 * 1024
_READ_CHUNK = 1024 * 1024
# Writers kept open between requests of an upload; older ones are closed and continue
# from the saved hash state (or, without one, re-hash the staged bytes) if it comes back.
_CACHED_WRITERS = 256
# Up to this many bytes are written (and hashed) on the event loop's thread; more go to a
# worker thread. Measured: a thread hop costs more than writing 256 KiB to the page cache.
_INLINE_BYTES = 256 * 1024


def _writeback_starter() -> Callable[[int, int, int, int], object] | None:
    """Linux's sync_file_range(2), or None where the C library has none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


_SYNC_FILE_RANGE = _writeback_starter()
_SYNC_FILE_RANGE_WRITE = 2


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing `length` bytes at `offset` to the disk, without
    waiting for it. A large upload's bytes then go to the disk while the next ones arrive,
    and the fsync that publishes the blob waits only for the last of them: measured on a
    256 MiB write, that fsync took 120 instead of 170 ms. Only a hint: whatever it does
    not start, the fsync still writes."""
    if _SYNC_FILE_RANGE is not None:
        _SYNC_FILE_RANGE(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def _boot_id() -> bytes | None:
    """This boot of the machine's kernel (Linux), or None where it cannot be told."""
    try:
        return uuid.UUID(Path("/proc/sys/kernel/random/boot_id").read_text().strip()).bytes
    except (OSError, ValueError):
        return None


_BOOT = _boot_id()
_UNSYNCED = b"U"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _FsWriter:
    def __init__(self, store: FsBlobStore, upload_id: str, fd: int, size: int, hasher: ResumableHash):
        self._store = store
        self.upload_id = upload_id
        self.fd = fd
        self._size = size
        self._flushed = size
        self._hasher = hasher
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._inflight: asyncio.Future[None] | None = None
        self.sealed = False
        self._acknowledged: int | None = None  # as `resume` was told; None until then

    @property
    def size(self) -> int:
        return self._size

    @property
    def state(self) -> bytes | None:
        """The running SHA-256 of the flushed bytes; None while some are still buffered."""
        if self._inflight is not None or self._pending or self._hasher.size != self._size:
            return None
        if _BOOT is None:
            return self._hasher.export()  # fsync'ed by `flush`
        return _UNSYNCED + _BOOT + self._hasher.export()

    async def resume(self, size: int, state: bytes | None = None) -> None:
        self._acknowledged = size
        await self.settle()
        if self._size == size and not self._pending:
            # Another process may have appended since this writer was cached. (fstat and
            # the other metadata calls below run inline: microseconds, less than a hop
            # to a thread and back.)
            stat = os.fstat(self.fd)
            if stat.st_size == size and stat.st_nlink == 1:
                return
        if size <= _INLINE_BYTES and (state is not None or size == 0):
            self._rewind(size, state)  # nothing to re-hash
        else:
            await anyio.to_thread.run_sync(self._rewind, size, state)

    def _rewind(self, size: int, state: bytes | None) -> None:
        self._pending, self._pending_bytes = [], 0
        stat = os.fstat(self.fd)
        if stat.st_nlink > 1:
            # Published (linked into blobs/) by a request that then died before the database
            # said so. Those bytes are a blob now: never cut or extend them.
            self.sealed = True
            size = stat.st_size
        elif stat.st_size < size:
            raise UploadLost(f"upload {self.upload_id} holds fewer bytes than were acknowledged")
        else:
            os.ftruncate(self.fd, size)
            saved = _restore(state, size)
            if saved is not None:
                os.lseek(self.fd, size, os.SEEK_SET)
                self._hasher, self._size, self._flushed = saved, size, size
                return
        hasher = ResumableHash()
        os.lseek(self.fd, 0, os.SEEK_SET)
        remaining = size
        while remaining:
            chunk = os.read(self.fd, min(8 * _READ_CHUNK, remaining))
            hasher.update(chunk)
            remaining -= len(chunk)
        os.lseek(self.fd, size, os.SEEK_SET)
        self._hasher, self._size, self._flushed = hasher, size, size

    async def write(self, data: bytes) -> None:
        if self.sealed:
            raise UploadSealed(f"upload {self.upload_id} was already published")
        if not data:
            return
        self._pending.append(data)
        self._pending_bytes += len(data)
        self._size += len(data)
        if self._pending_bytes >= _WRITE_BATCH:
            # One batch at a time goes to the disk and the hash on a worker thread while
            # the request's next bytes arrive: receiving overlaps writing and hashing
            # (a 256 MiB PUT: 552 -> 597 MB/s). The next batch waits for this one.
            await self.settle()
            chunks = self._take_pending()
            self._inflight = asyncio.ensure_future(anyio.to_thread.run_sync(self._write_chunks, chunks))

    async def settle(self) -> None:
        """Wait for the batch in flight, if any; raises what writing it raised. Everything
        that reads or changes the file, the hash or the flushed size does this first."""
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            await inflight

    async def settle_quietly(self) -> None:
        """`settle` before the writer is closed or kept: waits, shielded from a cancellation,
        so the worker thread is done with the file. A request that ends normally has settled
        already; a failing one keeps its own error, not the batch's."""
        with anyio.CancelScope(shield=True):
            try:
                await self.settle()
            except Exception:
                pass  # the bytes are unacknowledged; the next request's `resume` cuts them

    async def _drain(self) -> None:
        await self.settle()
        if not self._pending:
            return
        pending = self._pending_bytes
        chunks = self._take_pending()
        if pending <= _INLINE_BYTES:
            # Into the page cache and through the hash in microseconds: cheaper than the
            # hop. Larger batches go to a thread, where they overlap other requests.
            self._write_chunks(chunks)
        else:
            await anyio.to_thread.run_sync(self._write_chunks, chunks)

    def _take_pending(self) -> list[bytes]:
        """The bytes written but not yet in the file, which stop being pending."""
        chunks, self._pending, self._pending_bytes = self._pending, [], 0
        return chunks

    def _write_chunks(self, chunks: list[bytes]) -> None:
        start = self._flushed
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                written = os.write(self.fd, view)
                view = view[written:]
            # ctypes releases the GIL during the hash call, so hashing overlaps other requests.
            self._hasher.update(chunk)
        self._flushed += sum(len(c) for c in chunks)
        if self._flushed - start > _INLINE_BYTES:  # a batch written on a worker thread
            _start_writeback(self.fd, start, self._flushed - start)

    async def flush(self) -> None:
        if _BOOT is not None:
            # Into the page cache is enough (see the module's docstring): a chunked 256 MiB
            # push in 8 MiB PATCHes went from 381-462 to 448-532 MB/s without the fdatasync
            # each PATCH waited for. Large batches still start the disk at once.
            await self._drain()
            return
        # Where a machine crash cannot be told from a restart, acknowledged bytes are synced.
        await self.settle()
        chunks = self._take_pending()

        def write_and_sync() -> None:
            if chunks:
                self._write_chunks(chunks)
            os.fdatasync(self.fd)

        await anyio.to_thread.run_sync(write_and_sync)

    async def digest(self, algorithm: str) -> Digest:
        await self._drain()
        if algorithm == "sha256":
            return Digest("sha256", self._hasher.hexdigest())
        # Other algorithms are rare; hash the staged bytes again rather than pay twice always.
        path = self._store.upload_path(self.upload_id)
        return Digest(algorithm, await anyio.to_thread.run_sync(_hash_file, path, algorithm, self._size))

    async def commit(self, digest: Digest) -> None:
        await self.settle()
        chunks = self._take_pending()
        # One hop for what is left to write and everything that waits for the disk.
        await anyio.to_thread.run_sync(self._publish, digest, chunks)

    def _publish(self, digest: Digest, chunks: list[bytes]) -> None:
        if chunks:
            self._write_chunks(chunks)
        os.fsync(self.fd)
        staged = self._store.upload_path(self.upload_id)
        dest = self._store.blob_path(digest)
        if dest.exists():
            return  # another upload published the same content first: keep one copy
        dest.parent.mkdir(parents=True, exist_ok=True)
        # A hard link, not a rename: until the database links the blob, the staging name
        # still leads to the bytes, so a retried completion after a crash finds them.
        try:
            os.link(staged, dest)
        except FileExistsError:
            return
        _fsync_dir(dest.parent)

    def cut_unacknowledged(self) -> None:
        """Give back the space of the bytes this request wrote past the acknowledged ones
        (the next request's `resume` would cut them anyway); never a published blob's."""
        if self._acknowledged is None or self.sealed:
            return
        stat = os.fstat(self.fd)
        if stat.st_nlink == 1 and stat.st_size > self._acknowledged:
            os.ftruncate(self.fd, self._acknowledged)

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


def _restore(state: bytes | None, size: int) -> ResumableHash | None:
    """The saved hash when it is one of exactly `size` bytes whose staged copy can be
    trusted to be what was hashed; else the bytes are re-hashed."""
    if state is None:
        return None
    if state[:1] == _UNSYNCED:
        boot, state = state[1:17], state[17:]
        if boot != _BOOT:
            return None  # written under another boot: the page cache they sat in is gone
    try:
        hasher = ResumableHash.restore(state)
    except HashStateInvalid:
        return None
    return hasher if hasher.name == "sha256" and hasher.size == size else None


def _hash_file(path: Path, algorithm: str, size: int) -> str:
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as f:
        remaining = size
        while remaining > 0:
            chunk = f.read(min(_READ_CHUNK * 8, remaining))
            if not chunk:
                raise UploadLost(f"staged upload {path.name} is shorter than expected")
            hasher.update(chunk)
            remaining -= len(chunk)
    return hasher.hexdigest()


_OUT_OF_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def _out_of_space(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _OUT_OF_SPACE


def _amount(size: int) -> str:
    """A number of bytes as people read it: 512 B, 12.0 MiB, 1.5 GiB."""
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


class FsBlobStore:
    name = "filesystem"

    def __init__(self, root: Path, reserve_bytes: int = 0):
        """`reserve_bytes`: uploads are refused while less than this is free (0: never)."""
        self.root = root.resolve()
        self._reserve = reserve_bytes
        self._blobs = self.root / "blobs"
        self._uploads = self.root / "uploads"
        self._quarantine = self.root / "quarantine"
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._uploads.mkdir(parents=True, exist_ok=True)
        self._writers: OrderedDict[str, _FsWriter] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        self._lock_users: dict[str, int] = {}

    @property
    def blobs_root(self) -> Path:
        """The directory under which every blob's file lies (for a proxy that serves them)."""
        return self._blobs

    def blob_path(self, digest: Digest) -> Path:
        return self._blobs / digest.algorithm / digest.hex[:2] / digest.hex

    def upload_path(self, upload_id: str) -> Path:
        return self._uploads / upload_id

    async def size(self, digest: Digest) -> int | None:
        try:
            return (await anyio.to_thread.run_sync(os.stat, self.blob_path(digest))).st_size
        except FileNotFoundError:
            return None

    def local_path(self, digest: Digest) -> Path | None:
        return self.blob_path(digest)

    async def read(self, digest: Digest, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        path = self.blob_path(digest)
        f = await anyio.to_thread.run_sync(open, path, "rb")
        try:
            await anyio.to_thread.run_sync(f.seek, start)
            remaining = None if end is None else end - start
            while remaining is None or remaining > 0:
                want = _READ_CHUNK if remaining is None else min(_READ_CHUNK, remaining)
                chunk = await anyio.to_thread.run_sync(f.read, want)
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            f.close()

    async def delete(self, digest: Digest) -> None:
        await anyio.to_thread.run_sync(lambda: self.blob_path(digest).unlink(missing_ok=True))

    async def redirect_url(self, digest: Digest) -> str | None:
        return None

    async def list_blobs(self) -> AsyncIterator[StoredBlob]:
        # One directory (a two-hex-digit fan-out bucket) per thread hop.
        buckets = await anyio.to_thread.run_sync(_subdirectories, self._blobs, 2)
        for bucket in buckets:
            for blob in await anyio.to_thread.run_sync(_blobs_in, bucket):
                yield blob

    async def list_uploads(self) -> AsyncIterator[StagedUpload]:
        for upload in await anyio.to_thread.run_sync(_uploads_in, self._uploads):
            yield upload

    async def quarantine(self, digest: Digest) -> None:
        def move() -> None:
            source = self.blob_path(digest)
            dest = self._quarantine / digest.algorithm / digest.hex
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(source, dest)
            except FileNotFoundError:
                return
            _fsync_dir(dest.parent)
            _fsync_dir(source.parent)

        await anyio.to_thread.run_sync(move)

    def _free_bytes(self) -> int:
        # A metadata call of microseconds, made inline like the writers' fstat.
        stat = os.statvfs(self.root)
        return stat.f_bavail * stat.f_frsize

    def _full(self, free: int) -> InsufficientStorage:
        return InsufficientStorage(
            f"the registry's storage has {_amount(free)} free, under its reserve of {_amount(self._reserve)}:"
            " uploads are refused until space is freed",
            detail={"free_bytes": free, "reserve_bytes": self._reserve},
        )

    def _ran_out(self) -> InsufficientStorage:
        free = self._free_bytes()
        return InsufficientStorage(
            f"the registry's storage ran out of space while writing ({_amount(free)} free now, reserve"
            f" {_amount(self._reserve)}): this request's bytes were not kept (an upload's chunks"
            " acknowledged before it are), so the push may go on once space is freed",
            detail={"free_bytes": free, "reserve_bytes": self._reserve},
        )

    async def ensure_space(self) -> None:
        if self._reserve:
            free = self._free_bytes()
            if free < self._reserve:
                raise self._full(free)

    @asynccontextmanager
    async def upload(self, upload_id: str) -> AsyncIterator[BlobWriter]:
        lock = self._locks.setdefault(upload_id, asyncio.Lock())
        self._lock_users[upload_id] = self._lock_users.get(upload_id, 0) + 1
        try:
            async with lock:
                writer = self._writers.pop(upload_id, None)
                if writer is None:
                    try:
                        writer = self._open(upload_id)
                    except OSError as exc:
                        if _out_of_space(exc):
                            raise self._ran_out() from exc
                        raise
                try:
                    fcntl.flock(writer.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    # Another process is in this upload: wait for it off the event loop.
                    await anyio.to_thread.run_sync(fcntl.flock, writer.fd, fcntl.LOCK_EX)
                try:
                    yield writer
                except BaseException as exc:
                    # A request that failed half-way leaves bytes nobody acknowledged; the
                    # next request re-opens the upload and `resume` cuts them off. On a full
                    # disk they are cut off now, so that their space is free again at once.
                    await writer.settle_quietly()
                    full = _out_of_space(exc)
                    if full:
                        with anyio.CancelScope(shield=True):
                            await anyio.to_thread.run_sync(writer.cut_unacknowledged)
                    writer.close()
                    if full:
                        raise self._ran_out() from exc
                    raise
                else:
                    await writer.settle_quietly()
                    fcntl.flock(writer.fd, fcntl.LOCK_UN)
                    self._keep(writer)
        finally:
            self._lock_users[upload_id] -= 1
            if not self._lock_users[upload_id]:
                del self._lock_users[upload_id]
                del self._locks[upload_id]

    def _keep(self, writer: _FsWriter) -> None:
        if not os.path.exists(self.upload_path(writer.upload_id)):
            writer.close()  # committed or discarded
            return
        self._writers[writer.upload_id] = writer
        while len(self._writers) > _CACHED_WRITERS:
            _, old = self._writers.popitem(last=False)
            old.close()

    def _open(self, upload_id: str) -> _FsWriter:
        fd = os.open(self.upload_path(upload_id), os.O_RDWR | os.O_CREAT, 0o600)
        # Size unknown until `resume` says how many bytes were acknowledged.
        return _FsWriter(self, upload_id, fd, -1, ResumableHash())

    async def discard_upload(self, upload_id: str) -> None:
        writer = self._writers.pop(upload_id, None)
        if writer is not None:
            writer.close()
        self.upload_path(upload_id).unlink(missing_ok=True)

    async def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    async def check(self) -> str:
        def probe() -> str:
            if not os.access(self._uploads, os.W_OK) or not os.access(self._blobs, os.W_OK):
                raise OSError(f"{self.root} is not writable")
            free = self._free_bytes()
            if free < self._reserve:
                raise self._full(free)
            return f"{_amount(free)} free, reserve {_amount(self._reserve)}"

        return await anyio.to_thread.run_sync(probe)


def _mtime(stat: os.stat_result) -> datetime:
    return datetime.fromtimestamp(stat.st_mtime, UTC)


def _subdirectories(root: Path, depth: int) -> list[Path]:
    level = [root]
    for _ in range(depth):
        level = [Path(e.path) for d in level if d.is_dir() for e in os.scandir(d) if e.is_dir(follow_symlinks=False)]
    return level


def _blobs_in(bucket: Path) -> list[StoredBlob]:
    """The blobs of one `blobs/<algorithm>/<xx>` directory (names that are no digest skipped)."""
    found = []
    for entry in os.scandir(bucket):
        try:
            digest = Digest.parse(f"{bucket.parent.name}:{entry.name}")
            stat = entry.stat(follow_symlinks=False)
        except (DigestInvalid, FileNotFoundError):
            continue
        found.append(StoredBlob(digest, stat.st_size, _mtime(stat)))
    return found


def _uploads_in(directory: Path) -> list[StagedUpload]:
    found = []
    for entry in os.scandir(directory):
        try:
            found.append(StagedUpload(entry.name, _mtime(entry.stat(follow_symlinks=False))))
        except FileNotFoundError:
            continue  # committed or discarded meanwhile
    return found
