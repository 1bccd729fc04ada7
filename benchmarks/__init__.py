"""Portside side by side with the CNCF Distribution registry, measured in one run.

    .venv/bin/python -m benchmarks run [--quick] [--rounds N] [--only push,pull,...] [--json out.json]

The suite starts both registries itself on loopback (filesystem storage, no access log),
sets the same data up on each, and measures them in alternating rounds; it prints medians
and the ratio Portside / Distribution per scenario, with the targets judged beside them.
BENCHMARKS.md holds the latest full run and what it says.

Modules, in the order a run uses them:
    plan        sizes and durations of the full suite and of the quick mode (CI)
    servers     Portside and Distribution (tests/servers.py), open or with auth; nginx
    memory      peak RSS of each server's processes, from /proc
    payloads    the big blob, fresh copies of it, small images
    connection  a minimal keep-alive HTTP/1.1 client that sends files with sendfile
    registry    pushes, mounts, manifests and sign-in over the registry API
    load        wrk, ab and curl as load generators
    context     what the scenarios of one run share
    pages       the web UI's pages: their data seeded, each timed on one signed-in connection
    scenarios   what is measured
    results     the samples, medians and ratios
    targets     the ratios Portside aims for (and the UI's own page times)
    report      terminal table, markdown, JSON
    runner      one run, from starting the servers to stopping them

Imports `tests.servers`: run it from the repository root with the test extras installed.
"""
