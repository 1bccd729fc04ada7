"""What the benchmarks push: the big blob, fresh copies of it, images of every size.

Every measured push sends content neither registry has seen, so nothing is deduplicated:
a pushed copy of the big blob differs from it in its last 64 bytes. The SHA-256 state of
the bytes before those is kept, so a copy's digest costs a hash of 64 bytes, not of the
whole blob.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from benchmarks.connection import FileBody
from benchmarks.registry import Blob

__all__ = ["Payloads", "SmallImage", "config_blob"]

_TAIL = 64
_WRITE = 8 * 1024 * 1024


def config_blob(label: str) -> Blob:
    """An image configuration, distinct for each `label`."""
    return Blob.of(json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": {"b": label}}}).encode())


@dataclass(frozen=True)
class SmallImage:
    config: Blob
    layer: Blob


class Payloads:
    """Files under `root`: `big.bin` (pulled, and served by nginx) and `push.bin` (its copy
    whose tail each push rewrites)."""

    def __init__(self, root: Path, size: int):
        if size <= _TAIL:
            raise ValueError("the big blob must be larger than its tail")
        self.root = root
        self.size = size
        root.mkdir(parents=True, exist_ok=True)
        self.big_path = root / "big.bin"
        self.push_path = root / "push.bin"
        head = hashlib.sha256()
        with open(self.big_path, "wb") as f:
            left = size - _TAIL
            while left:
                block = os.urandom(min(left, _WRITE))
                head.update(block)
                f.write(block)
                left -= len(block)
            tail = os.urandom(_TAIL)
            f.write(tail)
        self._head = head
        whole = head.copy()
        whole.update(tail)
        self.big = Blob("sha256:" + whole.hexdigest(), size, FileBody(self.big_path, 0, size))
        shutil.copyfile(self.big_path, self.push_path)

    def fresh_copy(self) -> Blob:
        """`push.bin` with a new tail: a blob of the big one's size that no registry holds."""
        tail = os.urandom(_TAIL)
        with open(self.push_path, "r+b") as f:
            f.seek(self.size - _TAIL)
            f.write(tail)
        digest = self._head.copy()
        digest.update(tail)
        return Blob("sha256:" + digest.hexdigest(), self.size, FileBody(self.push_path, 0, self.size))

    @staticmethod
    def random_blob(size: int) -> Blob:
        return Blob.of(os.urandom(size))

    @staticmethod
    def small_images(count: int, layer_bytes: int, label: str) -> list[SmallImage]:
        return [SmallImage(config_blob(f"{label}-{i}"), Blob.of(os.urandom(layer_bytes))) for i in range(count)]
