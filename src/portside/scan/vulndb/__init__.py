"""The vulnerability database: importers of advisory data (OSV, Debian's security
tracker, Alpine's secdb, bundles of them; `update`), its status (`status`), and its
updates. The store it fills is `portside.meta.vulndb.VulnerabilityStore`;
`portside.scan.match` reads it.

Nothing is imported here: a server process reads the status on every health check but
imports the importers (and their HTTP client) only when an update runs.
"""
