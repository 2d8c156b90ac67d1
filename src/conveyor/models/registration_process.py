"""Registering finished training runs in a short-lived child process.

Registration loads MLflow, scikit-learn, pandas and skops, the trained model and the champion
it is scored against: about 400 MiB that a Python process never hands back to the system. In
``conveyor up``, which runs for weeks, that memory stayed with the controller after its first
registration (230 -> 626 MiB resident in the soak, docs/benchmarks.md). A child process started
for each round that has work does the same :class:`~conveyor.models.registration.Registrar`
work and exits, so the controller stays lean. Claims in SQL keep it exactly once, as before.
The child is spawned, not forked: the parent runs Ray and threads.
"""

from __future__ import annotations

import logging
import multiprocessing
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from conveyor.models.registration import CLAIM_STALE_SECONDS

if TYPE_CHECKING:
    from conveyor.models.registration import Registration
    from conveyor.settings import Settings

# As `conveyor up` logs (cli/run.py), so the child's lines read like the parent's.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RegistrationProcessError(RuntimeError):
    """The child process died or hung before it reported; its claims expire and are retried."""


def register_in_child(
    settings: Settings, timeout_seconds: float = CLAIM_STALE_SECONDS
) -> list[Registration]:
    """What ``ModelOps(Installation(settings)).register_pending()`` returns, run in a new
    process; its error is raised here. A child still running after ``timeout_seconds`` is
    killed (its claim goes stale after as long, so another round takes the item over)."""
    context = multiprocessing.get_context("spawn")
    receiving, sending = context.Pipe(duplex=False)
    child = context.Process(
        target=_child_main,
        args=(settings, sending, *_parent_logging()),
        name="conveyor-register",
        daemon=True,  # ends with `conveyor up`; a half-done registration is completed later
    )
    child.start()
    sending.close()
    try:
        outcome = _receive(receiving, child, timeout_seconds)
    finally:
        receiving.close()
        if child.is_alive():
            child.kill()
        child.join()
    if isinstance(outcome, BaseException):
        raise outcome
    registrations: list[Registration] = outcome
    return registrations


def _receive(
    receiving: Connection, child: multiprocessing.process.BaseProcess, timeout: float
) -> Any:
    if not receiving.poll(timeout):
        raise RegistrationProcessError(
            f"the registration process did not finish within {timeout:.0f} s; killed it"
        )
    try:
        return receiving.recv()
    except EOFError:
        child.join(5)
        raise RegistrationProcessError(
            f"the registration process exited with code {child.exitcode} before reporting"
        ) from None
    except Exception as error:  # an exception of the child's that does not unpickle here
        raise RegistrationProcessError(f"registration failed: {error!r}") from error


def _parent_logging() -> tuple[int, list[str]]:
    root = logging.getLogger()
    files = [h.baseFilename for h in root.handlers if isinstance(h, logging.FileHandler)]
    return root.level, files


def _child_main(settings: Settings, sending: Connection, level: int, files: list[str]) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    handlers += [logging.FileHandler(path) for path in files]
    logging.basicConfig(level=level, format=LOG_FORMAT, handlers=handlers)
    try:
        sending.send(_register(settings))
    except Exception as error:
        _send_error(sending, error)
    finally:
        sending.close()


def _register(settings: Settings) -> list[Registration]:
    from conveyor.installation import Installation
    from conveyor.models.service import ModelOps

    installation = Installation(settings)
    try:
        return ModelOps(installation).register_pending()
    finally:
        installation.close()


def _send_error(sending: Connection, error: Exception) -> None:
    try:
        sending.send(error)
    except Exception:  # an exception that does not pickle: its text is enough
        sending.send(RegistrationProcessError(f"registration failed: {error!r}"))
