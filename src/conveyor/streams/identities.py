"""What every intake shares: which messages of a batch the store has not taken yet, and the
dead letters of those that cannot be taken."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from conveyor.streams.brokers.base import Message
from conveyor.streams.messages import Poison
from conveyor.streams.tables import StreamDeadLetter, StreamMessage


def fresh_messages(
    sessions: sessionmaker[Session], source: str, messages: Sequence[Message]
) -> list[Message]:
    """The messages whose identity the store does not hold yet, each identity once, in the
    batch's order."""
    unique: dict[str, Message] = {}
    for message in messages:
        unique.setdefault(message.identity, message)
    with sessions() as session:
        known = set(
            session.scalars(
                select(StreamMessage.identity).where(
                    StreamMessage.source == source, StreamMessage.identity.in_(list(unique))
                )
            )
        )
    return [m for identity, m in unique.items() if identity not in known]


def add_dead_letters(
    session: Session, source: str, letters: Sequence[tuple[Message, Poison]], now: datetime
) -> None:
    """Keep each message whole with its reason (in the caller's transaction)."""
    rows = [
        {
            "source": source,
            "identity": message.identity,
            "payload": message.payload,
            "reason": f"{poison.code}: {poison.reason}",
            "received_at": now,
        }
        for message, poison in letters
    ]
    if rows:
        session.execute(insert(StreamDeadLetter), rows)
