"""Upkeep: online garbage collection, upload purging and integrity scrubs, run as jobs.

`gc` marks what tags reach and sweeps the rest while pushes continue; `purge` ends idle
upload sessions and staging areas nobody owns; `scrub` re-hashes stored blobs; `jobs`
runs any of them as a recorded job, one of a kind at a time across instances;
`schedule` fires them from cron schedules. They work through the protocols in
`storage.driver`, `meta.upkeep` and `coord.locks`, and may import `oci` and `errors`
(never HTTP, never the implementations).
"""
