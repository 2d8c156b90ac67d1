"""Writing a finished call into the ``calls`` tables (inside the result's transaction)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from conveyor.pipelines.calls.tables import CallEmotionScore, CallResult, CallSpeaker


def store_result(session: Session, item_id: str, result: dict[str, Any]) -> None:
    session.add(
        CallResult(
            item_id=item_id,
            duration_s=result["duration_s"],
            channels=result["channels"],
            summary=result["summary"],
            customer_issue=result["customer_issue"],
            follow_up=result["follow_up"],
            poor_call=result["flag"]["poor_call"],
            reasons=result["flag"]["reasons"],
            customer_satisfaction=result.get("customer_satisfaction"),
            pipeline_version=result.get("pipeline_version", ""),
        )
    )
    for speaker in result["speakers"]:
        session.add(
            CallSpeaker(
                item_id=item_id,
                speaker=speaker["id"],
                role=speaker["role"],
                role_confidence=speaker["role_confidence"],
                talk_time_s=speaker["talk_time_s"],
                text=speaker["text"],
                satisfaction=speaker["satisfaction"],
            )
        )
        session.add_all(
            CallEmotionScore(item_id=item_id, speaker=speaker["id"], emotion=name, score=score)
            for name, score in speaker["emotions"].items()
        )
