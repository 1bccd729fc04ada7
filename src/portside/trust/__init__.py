"""Trust: verifying signatures over images, pure and synchronous.

One module per concept: `keys` (public keys and their ids), `results` (the
`Verification` every check returns), `cosign` (simple-signing signatures under the
`.sig` tag), `dsse` and `bundle` (sigstore bundles as referrers), `roots`, `rekor` and
`keyless` (the trusted root, the transparency log and Fulcio certificates the keyless
checks rest on), `chains` (X.509 helpers), `notation` (Notary Project JWS signatures
and trust policies); and, for `portside sign`, `signing` and `bundle_signing` (cosign's
`.sig` signatures and sigstore bundles made with a key).

Callers hand in bytes they already hold (manifests, blobs, keys, policies) and get a
`Verification` back: no HTTP, no database, no registry, no clock but the `now` they
may pass. It imports only `cryptography` and the standard library, so the registry,
management and HTTP layers can all use it.
"""
