"""Taking results away: JSON and CSV exports of a pipeline's items."""
