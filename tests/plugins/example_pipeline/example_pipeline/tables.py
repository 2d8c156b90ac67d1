"""The package's table, on its own MetaData: Conveyor's schema stays Conveyor's."""

from sqlalchemy import Column, Integer, MetaData, String, Table

metadata = MetaData()
word_counts = Table(
    "example_word_counts",
    metadata,
    Column("item_id", String(32), primary_key=True),  # items.id; the migration adds the key
    Column("words", Integer, nullable=False),
    Column("longest", String(200), nullable=False),
)
