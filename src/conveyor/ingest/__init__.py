"""Getting work in: submitting files and records, and the inbox."""
