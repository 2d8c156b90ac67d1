"""File storage (inbox, work folders, artifacts) behind fsspec."""

from conveyor.storage.files import InboxEntry, Storage
from conveyor.storage.names import display_name, safe_file_name

__all__ = ["InboxEntry", "Storage", "display_name", "safe_file_name"]
