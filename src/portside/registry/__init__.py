"""OCI registry semantics on top of the blob store and the metadata store.

Services here speak in digests, manifests and repositories, never HTTP. They may import
`oci`, `errors` and the protocols in `storage.driver` and `meta.stores`.
"""
