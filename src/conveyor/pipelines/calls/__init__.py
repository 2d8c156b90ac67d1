"""``calls``: call-centre recordings -> who spoke when, a transcript per speaker, agent and
customer roles, six emotions and a satisfaction rating per speaker, a summary, and a poor-call
flag with reasons. See docs/calls.md.

DAG: decode -> (diarise, transcribe) -> roles -> (emotions, summarise) -> assess.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.errors import InputRejectedError, PermanentStepError
from conveyor.pipeline import Pipeline, PipelineHooks
from conveyor.pipelines.calls.steps import (
    assess,
    decode,
    diarise,
    emotions,
    roles,
    summarise,
    transcribe,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

VERSION = "1"
HERE = Path(__file__).parent


def check_audio(path: Path) -> None:
    """Reject at upload what can never be analysed: empty files and files with no audio."""
    from conveyor.pipelines.calls import audio

    try:
        audio.probe(path)
    except PermanentStepError as error:
        raise InputRejectedError(str(error)) from None


def store_result(session: Session, item_id: str, result: dict[str, Any]) -> None:
    from conveyor.pipelines.calls import store  # the ORM tables: where results are stored

    store.store_result(session, item_id, result)


calls = Pipeline(
    "calls",
    version=VERSION,
    dag={
        decode: [],
        diarise: [decode],
        transcribe: [decode],
        roles: [decode, diarise, transcribe],
        emotions: [decode, roles],
        summarise: [roles],
        assess: [decode, diarise, transcribe, roles, emotions, summarise],
    },
    description="Call-centre calls: speakers, transcript, roles, emotions, summary, poor-call flag",
    accepts=("file",),
    check_input=check_audio,
    store_result=store_result,
    hooks=PipelineHooks(
        migrations=HERE / "migrations",
        tables="conveyor.pipelines.calls.tables:metadata",
        item_renderer=HERE / "templates" / "item.html",
        static_assets=HERE / "static",  # call_player.js, which the renderer links to
        cli_summary="conveyor.pipelines.calls.cli:print_summary",
    ),
)

__all__ = ["calls"]
