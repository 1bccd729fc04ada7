"""SQLAlchemy implementation of the metadata stores, for SQLite and PostgreSQL."""
