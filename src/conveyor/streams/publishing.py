"""`conveyor streams publish`: messages from the command line or a JSON Lines file, published
to a source's broker (or appended to its file stream) in batches, each confirmed."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import BinaryIO

from conveyor.streams.brokers import open_producer
from conveyor.streams.brokers.base import Outgoing

BATCH = 500


def file_messages(lines: BinaryIO) -> Iterator[tuple[bytes, int]]:
    """(payload, bytes read so far) for each non-blank line of a JSON Lines file."""
    read = 0
    for line in lines:
        read += len(line)
        payload = line.rstrip(b"\r\n")
        if payload.strip():
            yield payload, read


def publish_all(
    url: str,
    options: Mapping[str, str],
    messages: Iterable[tuple[bytes, int]],
    progress: Callable[[int, int], None] = lambda published, read: None,
) -> int:
    """Publish every payload, BATCH at a time; ``progress(published, bytes read)`` after each
    confirmed batch. Returns how many were published."""
    producer = open_producer(url, options)
    published, batch, read = 0, [], 0
    try:
        for payload, read in messages:
            batch.append(Outgoing(payload))
            if len(batch) >= BATCH:
                producer.publish_batch(batch)
                published += len(batch)
                batch = []
                progress(published, read)
        if batch:
            producer.publish_batch(batch)
            published += len(batch)
        progress(published, read)
    finally:
        producer.close()
    return published
