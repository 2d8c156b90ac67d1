"""The built-in scenarios' own result tables, imported together so that Alembic's
autogenerate and the schema test see every table the migrations create.

Each scenario keeps its tables in a light module (``conveyor.pipelines.<name>.tables``) that
imports nothing heavier than SQLAlchemy.
"""

import conveyor.monitoring.tables  # alerts delivered by Alertmanager (issue 21)
import conveyor.pipelines.calls.tables
import conveyor.pipelines.wildlife.tables
import conveyor.retention.tables  # telemetry roll-ups (issue 21)
import conveyor.serving.tables  # serving (issue 6)
import conveyor.streams.tables  # noqa: F401  (stream sources, issue 17)
