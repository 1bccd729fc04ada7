"""The management API: Harbor API v2.0 under /api/v2.0 (FastAPI), and /c/login, /c/log_out.

One module per resource; each handler parses, calls one `mgmt` service and renders.
Stores reach it only through the services `wiring` builds.
"""
