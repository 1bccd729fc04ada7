"""Everything kept in the database: repositories, blob links, manifests, tags, uploads.

`stores` defines the protocols the registry uses; `sql` implements them with
SQLAlchemy for SQLite and PostgreSQL.
"""
