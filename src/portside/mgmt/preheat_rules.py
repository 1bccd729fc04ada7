"""What a preheat policy says, read from the JSON texts Harbor stores for it: `filters`
(which images), `trigger` (when) and `extra_attrs` (how the P2P system spreads them), each
checked when a policy is saved (BadRequest naming the field) and read again when it runs.

- filters `[{"type":"repository","value":"re*"},{"type":"tag","value":"v1.*"}, ...]`:
  repository and tag are Harbor's glob patterns (`*` within a path component, `**` across,
  `?`, `{a,b}`); the repository is matched without the project's name, as Harbor does.
  `label`, `vulnerability` and `signature` are kept as given (mgmt/preheat.py says what
  decides instead).
- trigger `{"type":"manual|scheduled|event_based","trigger_setting":{"cron":"0 0 3 * * *"}}`,
  the cron as the upkeep scheduler takes it (six fields, seconds first, UTC).
- extra_attrs `{"scope":"single_seed_peer|all_seed_peers|all_peers","cluster_ids":[1]}`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from portside.errors import BadRequest
from portside.upkeep.schedule import valid_cron

__all__ = [
    "FILTER_TYPES",
    "SCOPES",
    "TRIGGERS",
    "ExtraAttrs",
    "Filters",
    "Trigger",
    "glob",
    "parse_extra_attrs",
    "parse_filters",
    "parse_trigger",
]

TRIGGERS = ("manual", "scheduled", "event_based")
SCOPES = ("single_seed_peer", "all_seed_peers", "all_peers")
FILTER_TYPES = ("repository", "tag", "label", "vulnerability", "signature")
_NAME = 255


def glob(pattern: str) -> re.Pattern[str]:
    """Harbor's glob (doublestar): `*` any run within a path component, `**` any run at
    all, `?` one character but `/`, `{a,b}` either."""
    out, depth, i = [], 0, 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "{":
            out.append("(?:")
            depth += 1
        elif c == "}" and depth:
            out.append(")")
            depth -= 1
        elif c == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(c))
        i += 1
    if depth:
        raise BadRequest(f"filters: unbalanced braces in pattern {pattern[:100]!r}")
    return re.compile("".join(out) + r"\Z")


@dataclass(frozen=True, slots=True)
class Filters:
    repository: str | None = None
    tag: str | None = None
    labels: tuple[str, ...] = ()
    vulnerability: int | None = None
    signature: bool = False

    def repository_matches(self, repository: str) -> bool:
        name = repository.split("/", 1)[1] if "/" in repository else repository
        return self.repository is None or glob(self.repository).match(name) is not None

    def tag_matches(self, tag: str) -> bool:
        return self.tag is None or glob(self.tag).match(tag) is not None


def parse_filters(text: str) -> Filters:
    """Harbor's filters text; BadRequest naming what is wrong."""
    if not text.strip():
        return Filters()
    try:
        given = json.loads(text)
    except ValueError:
        raise BadRequest("filters: not JSON (a list of {type, value} objects)") from None
    if not isinstance(given, list):
        raise BadRequest("filters: a JSON list of {type, value} objects")
    found: dict[str, Any] = {}
    for item in given:
        if not isinstance(item, dict) or item.get("type") not in FILTER_TYPES:
            raise BadRequest(f"filters: each is {{type, value}} with type one of {', '.join(FILTER_TYPES)}")
        kind, value = item["type"], item.get("value")
        if kind in ("repository", "tag"):
            if not isinstance(value, str) or not value or len(value) > _NAME:
                raise BadRequest(f"filters: {kind}'s value is a pattern of 1 to {_NAME} characters")
            glob(value)
            found[kind] = value
        elif kind == "label":
            values = value if isinstance(value, list) else str(value or "").split(",")
            found["labels"] = tuple(str(v).strip() for v in values if str(v).strip())
        elif kind == "vulnerability":
            try:
                found["vulnerability"] = int(str(value))  # Harbor's severity number
            except (TypeError, ValueError):
                raise BadRequest("filters: vulnerability's value is a severity number") from None
        else:
            found["signature"] = value is True or str(value).lower() == "true"
    return Filters(**found)


@dataclass(frozen=True, slots=True)
class Trigger:
    type: str
    cron: str = ""


def parse_trigger(text: str) -> Trigger:
    if not text.strip():
        return Trigger("manual")
    try:
        given = json.loads(text)
    except ValueError:
        raise BadRequest("trigger: not JSON ({type, trigger_setting})") from None
    if not isinstance(given, dict) or given.get("type") not in TRIGGERS:
        raise BadRequest(f"trigger: type is one of {', '.join(TRIGGERS)}")
    setting = given.get("trigger_setting") or {}
    cron = setting.get("cron", "") if isinstance(setting, dict) else ""
    if given["type"] == "scheduled":
        if not isinstance(cron, str) or not cron.strip():
            raise BadRequest("trigger: a scheduled trigger needs trigger_setting.cron")
        try:
            return Trigger("scheduled", valid_cron(cron))
        except BadRequest as error:
            raise BadRequest(f"trigger: {error.text}") from None
    return Trigger(given["type"])


@dataclass(frozen=True, slots=True)
class ExtraAttrs:
    scope: str = "single_seed_peer"
    cluster_ids: tuple[int, ...] = ()


def parse_extra_attrs(text: str) -> ExtraAttrs:
    if not text.strip():
        return ExtraAttrs()
    try:
        given = json.loads(text)
    except ValueError:
        raise BadRequest("extra_attrs: not JSON ({scope, cluster_ids})") from None
    if not isinstance(given, dict):
        raise BadRequest("extra_attrs: a JSON object ({scope, cluster_ids})")
    scope = given.get("scope") or "single_seed_peer"
    if scope not in SCOPES:
        raise BadRequest(f"extra_attrs: scope is one of {', '.join(SCOPES)}")
    ids = given.get("cluster_ids") or []
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in ids):
        raise BadRequest("extra_attrs: cluster_ids is a list of positive integers")
    return ExtraAttrs(scope, tuple(ids))
