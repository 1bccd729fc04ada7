"""Harbor's pluggable scanner adapter API, served at /api/v1 when `scanner_adapter_enabled`:
thin routes over `portside.scan.adapter.server.AdapterServer`."""

from portside.http.adapter.routes import adapter_routes

__all__ = ["adapter_routes"]
