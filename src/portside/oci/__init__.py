"""Pure OCI rules — digests, names, media types, manifests. No I/O; imports only `errors`."""
