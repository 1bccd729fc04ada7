"""A loopback stand-in for Dragonfly's manager that holds every request to the published API
document, specs/dragonfly-manager-swagger.yaml (Swagger 2.0), and answers as it says.

Dragonfly is not installable here, so the driver is tested against this: a request to a
path or method the document does not have, a body that is not JSON or does not validate
against the operation's schema (with jsonschema; properties the schema does not list are
refused too, so a misspelt field fails), a missing required query parameter, or a wrong
Content-Type, is answered 400 with the reason, and kept in `rejected`, so a driver that
strays from the document fails its test. The document gives a job's `args` as a free-form
map; a "preheat" job's args are further held to the document's own description of a
preheat (`CreateV1PreheatRequest`: `type` image or file, `url`, string `headers`).

Jobs are kept (`jobs`, with the headers they came with) and answer PENDING for the first
`pending_polls` reads, then SUCCESS, or FAILURE for a URL holding `fail_when`. `token`, when
set, is the Bearer token (a personal access token) the open API insists on; `healthy`
False makes `/healthy` answer 500. Each answer is validated against the operation's
response schema too, so the stand-in cannot drift from the document either."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import yaml

# The checkout sits beside ../shared (as every worktree of it does).
SPEC_PATH = Path(__file__).resolve().parents[3] / "shared" / "specs" / "dragonfly-manager-swagger.yaml"
SPEC: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
_PREHEAT_ARGS = "d7y_io_dragonfly_v2_manager_types.CreateV1PreheatRequest"


class Invalid(Exception):
    """The request strays from the document; the message says how."""


def _schema(schema: dict[str, Any], *, closed: bool = False) -> dict[str, Any]:
    """`schema` ready for jsonschema: its own `$ref` followed (Draft 4 ignores what sits
    beside one), the document's definitions beside it for the refs within. `closed`: it
    refuses properties it does not list (where it lists some and says nothing of others),
    so what the document does not describe is not accepted."""
    if "$ref" in schema:
        schema = SPEC["definitions"][schema["$ref"].rsplit("/", 1)[-1]]
    if closed:
        schema = _closed(schema)
    return {**schema, "definitions": SPEC["definitions"]}


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    closed = dict(schema)
    if "properties" in closed:
        closed["properties"] = {k: v if "$ref" in v else _closed(v) for k, v in closed["properties"].items()}
        closed.setdefault("additionalProperties", False)
    return closed


def _operation(method: str, path: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The document's operation for `method path`, and the path parameters; Invalid if none."""
    for template, operations in SPEC["paths"].items():
        pattern = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
        matched = re.match(pattern, path)
        if matched and method.lower() in operations:
            return operations[method.lower()], matched.groupdict()
    raise Invalid(f"{method} {path} is not in Dragonfly's manager API")


def validate(method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[dict[str, Any], Any]:
    """Check one request against the document; the operation and the parsed body."""
    parts = urlsplit(target)
    operation, path_params = _operation(method, parts.path)
    query = parse_qs(parts.query)
    payload: Any = None
    for parameter in operation.get("parameters", []):
        where, name = parameter["in"], parameter["name"]
        if where == "path":
            value = path_params.get(name, "")
            if parameter.get("type") == "integer" and not value.isdigit():
                raise Invalid(f"path parameter {name} must be an integer")
        elif where == "query" and parameter.get("required") and name not in query:
            raise Invalid(f"query parameter {name} is required")
        elif where == "body":
            if "application/json" in operation.get("consumes", []):
                if not headers.get("content-type", "").startswith("application/json"):
                    raise Invalid(f"{method} {parts.path} takes application/json")
            try:
                payload = json.loads(body)
            except ValueError:
                raise Invalid("the body is not JSON") from None
            schema = _schema(parameter["schema"], closed=True)
            try:
                jsonschema.Draft4Validator(schema).validate(payload)
            except jsonschema.ValidationError as error:
                raise Invalid(f"body: {error.message} at {list(error.absolute_path)}") from None
    if body and payload is None:
        raise Invalid(f"{method} {parts.path} takes no body")
    if isinstance(payload, dict) and payload.get("type") == "preheat":
        args = _schema({"$ref": f"#/definitions/{_PREHEAT_ARGS}"})
        try:
            jsonschema.Draft4Validator(args).validate(payload.get("args"))
        except jsonschema.ValidationError as error:
            raise Invalid(f"args of a preheat job: {error.message}") from None
    return operation, payload


def check_response(operation: dict[str, Any], status: int, document: Any) -> None:
    """The stand-in's own answer, held to the document."""
    response = operation["responses"].get(str(status))
    assert response is not None, f"the document has no {status} answer for this operation"
    if "schema" in response:
        jsonschema.Draft4Validator(_schema(response["schema"])).validate(document)


@dataclass
class Job:
    id: int
    body: dict[str, Any]
    headers: dict[str, str]
    polls: int = 0
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


class DragonflyManager:
    """Start with `with DragonflyManager() as manager:`; `manager.url` is its endpoint."""

    def __init__(self, *, token: str | None = None, pending_polls: int = 1, fail_when: str | None = None):
        self.token = token
        self.pending_polls = pending_polls
        self.fail_when = fail_when
        self.healthy = True
        self.jobs: list[Job] = []
        self.rejected: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> DragonflyManager:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        with self._lock:
            self.requests.append((method, target))
            try:
                operation, payload = validate(method, target, headers, body)
            except Invalid as error:
                self.rejected.append(str(error))
                return 400, {"message": str(error)}
            path = urlsplit(target).path
            if path == "/healthy":
                return (200, None) if self.healthy else (500, None)
            if path.startswith("/oapi/") and self.token is not None:
                if headers.get("authorization") != f"Bearer {self.token}":
                    return 401, {"message": "a personal access token is required"}
            status, document = self._jobs(method, path, headers, payload)
            check_response(operation, status, document)
            return status, document

    def _jobs(self, method: str, path: str, headers: dict[str, str], payload: Any) -> tuple[int, Any]:
        if method == "POST" and path == "/oapi/v1/jobs":
            job = Job(len(self.jobs) + 1, payload, headers)
            self.jobs.append(job)
            return 200, self._document(job)
        matched = re.fullmatch(r"/oapi/v1/jobs/(\d+)", path)
        if method == "GET" and matched:
            found = [j for j in self.jobs if j.id == int(matched.group(1))]
            if not found:
                return 404, {"message": "job not found"}
            found[0].polls += 1
            return 200, self._document(found[0])
        return 404, {"message": f"the stand-in does not serve {method} {path}"}

    def _document(self, job: Job) -> dict[str, Any]:
        state = "PENDING"
        if job.polls >= self.pending_polls:
            failing = self.fail_when is not None and self.fail_when in str(job.body.get("args", {}).get("url"))
            state = "FAILURE" if failing else "SUCCESS"
        document: dict[str, Any] = {
            "id": job.id,
            "type": job.body["type"],
            "args": job.body.get("args", {}),
            "state": state,
            "created_at": job.created_at,
            "updated_at": datetime.now(UTC).isoformat(),
        }
        if state == "FAILURE":
            document["result"] = {"error": "seed peer could not download the image"}
        return document


def _handler(manager: DragonflyManager) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, document = manager.answer(self.command, self.path, headers, body)
            data = b"" if document is None else json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
            return

    return Handler
