"""Harbor's pluggable scanner adapter API, as its own OpenAPI document
(`specs/harbor-scanner-adapter-openapi.yaml`) says: `AdapterSpec` checks requests and
answers against the document's schemas, `SpecTransport` runs every exchange of an httpx
client through it. Shared by the tests of Portside's adapter client and of its adapter
server, so neither side can drift from the API."""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import httpx
import yaml
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from tests.scan.shared import SPECS

__all__ = ["ERROR_MIME", "AdapterSpec", "SpecTransport", "SyncSpecTransport", "adapter_spec"]

ERROR_MIME = "application/vnd.scanner.adapter.error+json; version=1.0"


# The API's own schemas


class AdapterSpec:
    """The OpenAPI document, read for what the tests check: each operation's request body
    and each documented answer's schema, with `#/components/...` resolved in place."""

    URI = "urn:harbor-scanner-adapter-openapi"

    def __init__(self) -> None:
        self.document = yaml.safe_load((SPECS / "harbor-scanner-adapter-openapi.yaml").read_text())
        self.base = self.document["servers"][0]["url"]  # /api/v1
        self.registry: Registry[Any] = Registry().with_resource(
            self.URI, Resource.from_contents(self.document, default_specification=DRAFT7)
        )
        self.checked: list[tuple[str, str, int]] = []

    def validator(self, schema: dict[str, Any]) -> Draft7Validator:
        """For a schema taken out of the document: its `#/components/...` refs resolve in it."""
        return Draft7Validator(
            _absolute(schema, self.URI), registry=self.registry, format_checker=Draft7Validator.FORMAT_CHECKER
        )

    def component(self, name: str) -> Draft7Validator:
        return self.validator({"$ref": f"#/components/schemas/{name}"})

    def validate(self, name: str, value: Any) -> None:
        self.component(name).validate(value)

    def operation(self, method: str, path: str) -> dict[str, Any]:
        assert path.startswith(self.base + "/"), path
        relative = path[len(self.base) :]
        for template, operations in self.document["paths"].items():
            pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
            if re.match(pattern, relative) and method.lower() in operations:
                operation: dict[str, Any] = operations[method.lower()]
                return operation
        raise AssertionError(f"{method} {path} is no operation of the API")

    def check_request(self, request: httpx.Request, body: bytes) -> None:
        path = _raw_path(request)
        operation = self.operation(request.method, path)
        if "requestBody" in operation:
            content_type = request.headers.get("Content-Type", "")
            assert content_type in operation["requestBody"]["content"], content_type
            self.validator(operation["requestBody"]["content"][content_type]["schema"]).validate(json.loads(body))
        for parameter in operation.get("parameters", []):
            where = {"header": request.headers, "query": request.url.params}.get(parameter["in"])
            if where is not None and parameter["name"] in where:
                self.validator(parameter["schema"]).validate(where[parameter["name"]])
                if "enum" in parameter:
                    assert where[parameter["name"]] in parameter["enum"]

    def check_response(self, request: httpx.Request, response: httpx.Response) -> None:
        path = _raw_path(request)
        operation = self.operation(request.method, path)
        template = self._template(request.method, path)
        answers = {int(status): answer for status, answer in operation["responses"].items()}
        if self.document.get("security") and 401 not in answers:
            # The document's security schemes: a refused credential is HTTP's 401, which no
            # operation lists; its body is held to the API's ErrorResponse as every error's.
            answers[401] = {"content": {ERROR_MIME: {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
        assert response.status_code in answers, f"{response.status_code} is no documented answer of {path}"
        answer = answers[response.status_code]
        for header, spec in answer.get("headers", {}).items():
            if spec["schema"]["type"] == "integer":
                assert re.fullmatch(r"\d+", response.headers[header]), (header, response.headers.get(header))
        if "content" in answer:
            content_type = response.headers.get("Content-Type", "")
            assert content_type in answer["content"], f"{content_type!r} is not among {list(answer['content'])}"
            self.validator(answer["content"][content_type]["schema"]).validate(response.json())
        self.checked.append((request.method, template, response.status_code))

    def _template(self, method: str, path: str) -> str:
        relative = path[len(self.base) :]
        for template in self.document["paths"]:
            if re.match("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$", relative):
                return str(template)
        raise AssertionError(path)


def _raw_path(request: httpx.Request) -> str:
    """The path as sent, still escaped: an escaped `/` inside an id is no path separator."""
    return request.url.raw_path.decode().partition("?")[0]


def _absolute(schema: Any, uri: str) -> Any:
    """A copy of `schema` whose document-local `$ref`s name the document."""
    if isinstance(schema, dict):
        return {
            key: uri + value
            if key == "$ref" and isinstance(value, str) and value.startswith("#")
            else _absolute(value, uri)
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_absolute(item, uri) for item in schema]
    return schema


@functools.cache
def adapter_spec() -> AdapterSpec:
    return AdapterSpec()


class SpecTransport(httpx.AsyncBaseTransport):
    """Passes each exchange to `inner` and checks request and answer against the API."""

    def __init__(self, inner: httpx.AsyncBaseTransport, spec: AdapterSpec) -> None:
        self.inner = inner
        self.spec = spec

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        self.spec.check_request(request, body)
        answer = await self.inner.handle_async_request(request)
        content = await answer.aread()
        await answer.aclose()
        response = httpx.Response(answer.status_code, headers=answer.headers, content=content, request=request)
        self.spec.check_response(request, response)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class SyncSpecTransport(httpx.BaseTransport):
    """`SpecTransport` for a synchronous client (tests against live servers). With
    `check_requests=False` only the answers are checked: for the requests a test sends on
    purpose outside the API (malformed ones), whose answers must still be the API's."""

    def __init__(
        self, spec: AdapterSpec, inner: httpx.BaseTransport | None = None, *, check_requests: bool = True
    ) -> None:
        self.inner = inner or httpx.HTTPTransport()
        self.spec = spec
        self.check_requests = check_requests

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        if self.check_requests:
            self.spec.check_request(request, body)
        answer = self.inner.handle_request(request)
        content = answer.read()
        answer.close()
        response = httpx.Response(answer.status_code, headers=answer.headers, content=content, request=request)
        self.spec.check_response(request, response)
        return response

    def close(self) -> None:
        self.inner.close()
