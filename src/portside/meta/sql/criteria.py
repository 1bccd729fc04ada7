"""`Criteria` as SQL: the one translation of Harbor's match kinds every SQL listing uses.

A listing names its fields: a column (or any SQL expression with a type), or a function
that builds the condition itself (a field of many values, such as an artifact's tags).
Values are converted to the column's type here, so `user_id=7`, `pull_count=[10~]` and
`creation_time=[2024-01-01 00:00:00~]` mean what they say; a value that cannot be one is a
BAD_REQUEST naming the field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ColumnElement, DateTime, Integer, String, and_, cast, false, true
from sqlalchemy.types import TypeEngine

from portside.errors import BadRequest
from portside.meta.criteria import Criteria, Match, Value
from portside.meta.sql.engine import utc

__all__ = ["Special", "Fields", "conditions", "ordering", "like_escape", "TIME_FORMATS"]

Special = Callable[[Match], ColumnElement[bool]]
Fields = Mapping[str, ColumnElement[Any] | Special]

_BITS = {"int": 32, "bigint": 64}
TIME_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d")


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _kind(type_: TypeEngine[Any]) -> str:
    if isinstance(type_, Boolean):
        return "bool"
    if isinstance(type_, BigInteger):
        return "bigint"
    if isinstance(type_, Integer):
        return "int"
    if isinstance(type_, DateTime):
        return "time"
    return "text"


def _time(text: str) -> datetime:
    for form in TIME_FORMATS:
        try:
            return datetime.strptime(text, form).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValueError(text)


def _convert(field: str, kind: str, value: Value) -> Any:
    try:
        if kind in _BITS:
            if isinstance(value, datetime):
                raise ValueError(value)
            number = int(value)
            # Past the column's range no row can match, and the database would refuse it.
            if not -(2 ** (_BITS[kind] - 1)) <= number < 2 ** (_BITS[kind] - 1):
                raise BadRequest(f"{field}: {value} is out of range")
            return number
        if kind == "bool":
            text = str(value).lower()
            if text not in ("true", "false", "1", "0"):
                raise ValueError(value)
            return text in ("true", "1")
        if kind == "time":
            if isinstance(value, datetime):
                return utc(value)
            if isinstance(value, int):
                return datetime.fromtimestamp(value, UTC)
            return _time(value)
    except (ValueError, OverflowError, OSError):
        expected = {"bool": "true or false", "time": "a time (2024-01-31 23:59:59)"}.get(kind, "a number")
        raise BadRequest(f"{field} must be {expected}, not {value!r}") from None
    return value.strftime("%Y-%m-%dT%H:%M:%S") if isinstance(value, datetime) else str(value)


def _condition(field: str, column: ColumnElement[Any], match: Match) -> ColumnElement[bool]:
    kind = _kind(column.type)
    values = [None if v is None else _convert(field, kind, v) for v in match.values]
    if match.kind == "fuzzy":
        text = column if kind == "text" else cast(column, String)
        # Case-insensitive, as SQLite's LIKE always is (for ASCII) and Harbor's icontains.
        return text.ilike(f"%{like_escape(str(match.value or ''))}%", escape="\\")
    if match.kind == "range":
        low, high = values
        bounds = [column >= low] if low is not None else []
        bounds += [column <= high] if high is not None else []
        return and_(true(), *bounds)
    if match.kind == "any":
        return column.in_(values) if values else false()
    # exact, and all: the one value of a plain field equals each given
    return and_(true(), *(column == v for v in values))


def conditions(fields: Fields, criteria: Criteria) -> list[ColumnElement[bool]]:
    """The WHERE conditions of `criteria`; every field must be one of `fields`."""
    out: list[ColumnElement[bool]] = []
    for field, match in criteria.matches:
        target = fields[field]
        out.append(target(match) if callable(target) else _condition(field, target, match))
    return out


def ordering(fields: Fields, criteria: Criteria, *, bytewise: Callable[[Any], Any]) -> list[Any]:
    """The ORDER BY of `criteria`; text is ordered by bytes on every database (`bytewise`)."""
    out = []
    for field, descending in criteria.order:
        target = fields[field]
        if callable(target):
            raise ValueError(f"{field} cannot be sorted by")
        column = bytewise(target) if _kind(target.type) == "text" else target
        out.append(column.desc() if descending else column)
    return out
