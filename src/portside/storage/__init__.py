"""Bytes: where blob content and in-flight uploads live.

`driver` defines the small `BlobStore` protocol the registry uses; `fs` implements it
on a local filesystem. Implementations import only `oci` and `errors` (and their SDKs).
"""
