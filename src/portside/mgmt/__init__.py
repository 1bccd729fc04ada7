"""The management API's services (Harbor API v2.0 semantics), one module per resource.

Services check permissions through `auth.policy.Policy`, change state through store
protocols (`meta.accounts`, `meta.artifacts`, `meta.sessions`) and the registry's own
services, and record every change in the audit log. No HTTP here: they may import
`errors`, `oci`, `auth`, `registry` and the protocols in `meta`.
"""
