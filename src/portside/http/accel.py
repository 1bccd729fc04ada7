"""Handing blob downloads to nginx (X-Accel-Redirect).

Behind nginx on the machine that holds the filesystem store, Portside checks access and
answers a blob GET with headers only, naming the file in `X-Accel-Redirect`; nginx then
sends it from its internal location with sendfile(2), Range requests included. The bytes
never pass through Python, and nginx's sendfile runs several times faster than the
server's own file path (BENCHMARKS.md). deploy/nginx/portside-single.conf is the matching
nginx site.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

__all__ = ["NginxBlobLocation"]


class NginxBlobLocation:
    """Maps a blob file under `root` (the store's blobs directory) to nginx's internal
    `location` that serves that directory."""

    def __init__(self, location: str, root: Path):
        self.location = location
        self.root = root.resolve()

    def redirect(self, path: Path) -> str | None:
        """The X-Accel-Redirect value for the blob file `path`; None if it is not under root."""
        try:
            relative = path.relative_to(self.root)
        except ValueError:
            return None
        return self.location + quote(relative.as_posix())
