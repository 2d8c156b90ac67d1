"""Event streams in and out: broker sources that become items, sinks through an outbox."""
