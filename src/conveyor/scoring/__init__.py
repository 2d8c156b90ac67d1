"""Batch scoring: a registered model version over files far larger than memory, on Ray.

``plan.py`` cuts the inputs into parts (byte ranges of CSV/JSONL files at line ends, Parquet
row groups), ``parse.py`` turns one part into a feature matrix and its rejects, ``parts.py``
scores and writes one part (the unit of commit), ``jobs.py`` keeps the job and its committed
parts in the store, ``runner.py`` streams the parts through a Ray actor pool and
``service.py`` ties them together for the CLI and the API.
"""
