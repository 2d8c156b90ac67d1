#!/bin/bash
# First start of the database only: MLflow's tracking store lives beside Conveyor's, in its
# own database (both use Alembic and would fight over one alembic_version table).
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -c "CREATE DATABASE mlflow OWNER \"$POSTGRES_USER\""
