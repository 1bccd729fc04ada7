"""Coordination between server processes and instances: locks, shared counters, change feeds."""
