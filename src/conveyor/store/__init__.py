"""The state store: SQLAlchemy models, migrations and the item repository."""
