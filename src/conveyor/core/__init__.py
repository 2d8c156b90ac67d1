"""The dependency-free core: plain data and rules that the engine, the store and the API share.

Nothing here imports another part of Conveyor or does I/O, so every layer may import it and it
is tested without servers (``tests/core``):

- :mod:`conveyor.core.lifecycle`: item and step states, the transitions between them, retries.
- :mod:`conveyor.core.commits`: what one controller loop iteration commits, and what the
  store reports back.
- :mod:`conveyor.core.durations`: step run time statistics.
"""
