"""The OCI Distribution API (`/v2`): one module per resource, routes in `routes`."""
