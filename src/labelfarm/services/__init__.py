"""Use cases as plain functions over a SQLAlchemy connection. No HTTP here."""
