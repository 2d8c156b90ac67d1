"""What a viewer may see of a failure: its message, not its traceback or the server's paths.

Step errors and step logs are stored whole (operators need the traceback to fix a pipeline).
Shown to a viewer, tracebacks are replaced by one line and absolute paths are rewritten: a
path under the storage root becomes relative to it (``work/<item>/input.csv``, which the
viewer can find among the item's artifacts), any other absolute path becomes ``[server path]``
(it names the installation's layout, user names, Python versions). Operators and admins see
everything as stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from conveyor.auth.roles import Role, allows
from conveyor.auth.service import Principal
from conveyor.storage.files import Storage

TRACEBACK_START = "Traceback (most recent call last):"
CHAIN_LINES = (
    "During handling of the above exception",
    "The above exception was the direct cause",
)
HIDDEN_TRACEBACK = "[traceback hidden: operators and admins can see it]"
SERVER_PATH = "[server path]"
# Two or more segments, not inside a URL (//host/...) or a word (km/h, 2026/11/28).
ABSOLUTE_PATH = re.compile(r"(?<![\w/:.~-])(?:/[^\s'\"`<>|:;,()\[\]{}/]+){2,}/?")

Redact = Callable[[str | None], str | None]


@dataclass(frozen=True)
class Disclosure:
    """How much of stored error text one caller sees."""

    full: bool
    storage_root: str = ""

    def __call__(self, text: str | None) -> str | None:
        if text is None or self.full:
            return text
        return redact_paths(strip_tracebacks(text), self.storage_root)


def disclosure_for(principal: Principal, storage: Storage) -> Disclosure:
    """Everything for operators and admins; the redacted text for viewers."""
    root = storage.root if storage.is_local else ""  # remote storage: errors name URLs
    return Disclosure(allows(principal.role, Role.OPERATOR), root)


def strip_tracebacks(text: str) -> str:
    """Each traceback becomes one line; the exception line after it (the message) stays."""
    kept: list[str] = []
    inside = False
    for line in text.split("\n"):
        if TRACEBACK_START in line:
            kept.append(line[: line.index(TRACEBACK_START)] + HIDDEN_TRACEBACK)
            inside = True
        elif not inside:
            kept.append(line)
        elif not _traceback_body(line):
            inside = False
            kept.append(line)
    return "\n".join(kept)


def _traceback_body(line: str) -> bool:
    """Frames, source lines, carets and exception-group bars are indented; chains say so."""
    return line == "" or line[0] in " \t" or line.startswith(CHAIN_LINES)


def redact_paths(text: str, storage_root: str) -> str:
    """Paths under ``storage_root`` relative to it; other absolute paths replaced."""
    root = storage_root.rstrip("/")
    if root:
        text = text.replace(root + "/", "")
    return ABSOLUTE_PATH.sub(SERVER_PATH, text)
