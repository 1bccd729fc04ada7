"""Validate response bodies against the Harbor swagger's definitions (swagger 2.0 → JSON Schema)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SWAGGER = Path("/work/shared/specs/harbor-api-v2.0.swagger.yaml")
if not SWAGGER.exists():  # the spec beside the repository, as the issue cites it
    SWAGGER = Path(__file__).parents[3] / "shared/specs/harbor-api-v2.0.swagger.yaml"


def _convert(node: Any) -> Any:
    """Swagger 2.0's vendor keys mean nothing to JSON Schema; drop them, keep the rest."""
    if isinstance(node, dict):
        return {k: _convert(v) for k, v in node.items() if not k.startswith("x-") and k != "example"}
    if isinstance(node, list):
        return [_convert(v) for v in node]
    return node


@functools.cache
def _definitions() -> dict[str, Any]:
    spec = yaml.safe_load(SWAGGER.read_text())
    definitions: dict[str, Any] = _convert(spec["definitions"])
    # The swagger types extra_attrs' values as objects, yet Harbor itself puts the image
    # config's architecture, os, author and created there as strings.
    definitions["ExtraAttrs"] = {"type": "object"}
    return definitions


def schema(name: str, *, array: bool = False) -> dict[str, Any]:
    ref = {"$ref": f"#/definitions/{name}"}
    return {"definitions": _definitions(), **({"type": "array", "items": ref} if array else ref)}


def check(body: Any, name: str, *, array: bool = False) -> None:
    """Raise when `body` does not match definition `name` (or an array of it)."""
    jsonschema.validate(body, schema(name, array=array), format_checker=jsonschema.FormatChecker())
