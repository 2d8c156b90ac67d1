"""The MLflow tags that carry a delivered version's source (no imports, so the CLI can read
them without loading the promotion logic)."""

COMMIT_TAG = "conveyor.source_commit"
REPOSITORY_TAG = "conveyor.source_repository"
