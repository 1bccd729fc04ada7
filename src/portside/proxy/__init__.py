"""The pull-through cache: projects that proxy another registry (Harbor's proxy projects).

A project created with a `registry_id` answers pulls with what it has cached, fetching from
that registry what it lacks, and keeps what it fetched. The package holds the decisions
(when to ask the upstream, what to serve when it fails), the upstream's reach (limits,
tokens, failover), and the one download each missing blob gets.

Its own layer, between `http` and `mgmt`, because it is the one place that uses both
`remote` (the upstream) and `registry` (the local copy) and reads projects and registries
through `mgmt`'s services; nothing below imports it, and `http` only asks it about the
projects it proxies.
"""
