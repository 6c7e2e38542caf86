"""The service's shared database: ``Database`` (SQLite default, PostgreSQL by URL) and tables."""

from kizuna.db.engine import Database, DatabaseUnavailable, default_database_url

__all__ = ["Database", "DatabaseUnavailable", "default_database_url"]
