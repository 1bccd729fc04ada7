"""Coordination between server processes and instances: locks, generations, login throttle.

`coordinator.LocalCoordinator` serves one machine (flock, memory-mapped generations and
the table of failed attempts in `throttle.py`);
`redis.RedisCoordinator` serves several instances over one Redis. Only `wiring` picks one;
everything else receives the pieces (`Locks`, a `ChangeCounter`, a `Throttle`).

May import: `errors`, the protocols in `meta.stores`, `auth.throttle`; `redis` in `redis.py`.
"""
