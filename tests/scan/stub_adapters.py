"""Small scanner adapters for the tests that need one on 127.0.0.1: a server running any
`BaseHTTPRequestHandler` in a thread, and the adapter API's metadata document they answer."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["METADATA_MIME", "REPORT_MIME", "answer_json", "metadata_adapter", "metadata_document", "running"]

METADATA_MIME = "application/vnd.scanner.adapter.metadata+json; version=1.0"
REPORT_MIME = "application/vnd.security.vulnerability.report; version=1.1"


@contextmanager
def running(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve `handler` on a free port of 127.0.0.1 in a thread; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def metadata_document(name: str, vendor: str, version: str) -> dict[str, Any]:
    """An adapter's metadata: it reads OCI image manifests and writes vulnerability reports."""
    return {
        "scanner": {"name": name, "vendor": vendor, "version": version},
        "capabilities": [
            {
                "consumes_mime_types": ["application/vnd.oci.image.manifest.v1+json"],
                "produces_mime_types": [REPORT_MIME],
            }
        ],
        "properties": {},
    }


def answer_json(handler: BaseHTTPRequestHandler, status: int, body: Any, content_type: str) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def metadata_adapter(key: str, name: str, vendor: str, version: str) -> type[BaseHTTPRequestHandler]:
    """An adapter that answers only its metadata, and only with the API key `key`."""

    class MetadataAdapter(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path != "/api/v1/metadata":
                self.send_error(404)
            elif self.headers.get("X-ScannerAdapter-API-Key") != key:
                answer_json(self, 401, {"error": {"message": "wrong API key"}}, METADATA_MIME)
            else:
                answer_json(self, 200, metadata_document(name, vendor, version), METADATA_MIME)

        def log_message(self, *args: object) -> None:
            pass

    return MetadataAdapter
