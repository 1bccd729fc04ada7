"""The RFC 822-like stanzas Debian's dpkg and (with one-letter keys) Alpine's apk keep their
databases in: `Key: value` lines, continuation lines starting with a space, blank lines
between packages."""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["stanzas"]


def stanzas(text: str, separator: str = ":") -> Iterator[dict[str, str]]:
    fields: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields, last = {}, None
        elif line[0] in " \t":
            if last is not None:
                fields[last] += "\n" + line.strip()
        elif separator in line:
            key, _, value = line.partition(separator)
            last = key.strip()
            fields[last] = value.strip()
    if fields:
        yield fields
