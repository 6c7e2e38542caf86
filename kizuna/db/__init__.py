"""The service's shared database: ``Database`` (SQLite default, PostgreSQL by URL) and tables."""

from kizuna.db.engine import Database

__all__ = ["Database"]
