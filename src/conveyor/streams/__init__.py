"""Event streams: broker sources whose messages become items, exactly once into the store
(docs/streams.md). Broker adapters live behind one seam in ``brokers/``."""
