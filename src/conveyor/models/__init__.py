"""Model operations: training runs as pipelines, tracking and registry (MLflow), promotion.

- ``schema``, ``tabular``, ``onnx``, ``provenance``: what training steps use (pure or local).
- ``training``: the training pipeline type and the record/result contract of a run.
- ``submission``: starting a run (dataset snapshot by digest, a record item).
- ``registry``: the MLflow seam; ``registration``: run -> version -> promotion gate.
- ``promotion``: the gate and alias-history rules as plain functions; ``history``: their SQL.
- ``service``: :class:`~conveyor.models.service.ModelOps`, what the CLI and ``conveyor up`` call.
"""
