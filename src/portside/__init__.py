"""Portside: a container image registry.

The package is layered; requests flow one way:

    http  →  registry / auth  →  storage.driver / meta.stores (protocols)  →  implementations

`wiring` is the only module that builds concrete objects. `oci` and `errors`
hold pure rules and import nothing of Portside's but each other.
"""

__version__ = "0.1.0"
