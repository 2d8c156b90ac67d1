"""``heart``: the heart-disease classifier of a wearable bracelet, trained on the Cleveland table.

Submit training with ``conveyor train heart [--param k=v] [--wait]``; see docs/models.md.
"""

from conveyor.pipelines.heart.steps import heart

__all__ = ["heart"]
