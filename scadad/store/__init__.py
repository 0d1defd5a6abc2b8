"""The metadata store: one SQLAlchemy engine (SQLite by default, PostgreSQL by URL) and
its numbered migrations."""
