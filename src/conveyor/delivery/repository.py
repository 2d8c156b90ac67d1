"""The git seam: read a model repository at one commit, bare or not, without a checkout.

Only ``git`` itself is run (no library); every call names the repository with ``-C`` and a
fixed argument list, so a ref or a path from a push is never read as an option or by a shell.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from conveyor.errors import InputRejectedError

GIT_TIMEOUT_SECONDS = 30


class RepositoryError(InputRejectedError):
    code = "repository_error"


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    author: str
    subject: str


class GitRepository:
    def __init__(self, path: Path) -> None:
        self.path = path.resolve()
        if not self.path.is_dir():
            raise RepositoryError(f"{path} is not a folder; --repo names a git repository")

    def commit(self, ref: str) -> CommitInfo:
        """The commit ``ref`` names (a sha, a branch, ``HEAD``)."""
        if ref.startswith("-"):
            raise RepositoryError(f"{ref!r} is not a commit or branch name")
        text = self._git("log", "-1", "--format=%H%x00%an <%ae>%x00%s", f"{ref}^{{commit}}", "--")
        sha, author, subject = text.decode().rstrip("\n").split("\x00", 2)
        return CommitInfo(sha, author, subject)

    def read(self, sha: str, path: str) -> bytes:
        """The bytes of ``path`` at commit ``sha``; an error names the file and the commit."""
        if path.startswith(("/", "-")) or ".." in Path(path).parts:
            raise RepositoryError(f"{path!r} must be a path inside the repository")
        try:
            return self._git("show", f"{sha}:{path}")
        except RepositoryError as error:
            raise RepositoryError(f"{path} is not in commit {sha[:12]}: {error}") from error

    def _git(self, *arguments: str) -> bytes:
        try:
            completed = subprocess.run(
                ["git", "-C", str(self.path), *arguments],
                capture_output=True,
                timeout=GIT_TIMEOUT_SECONDS,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise RepositoryError(f"git could not run in {self.path}: {error}") from error
        if completed.returncode != 0:
            message = completed.stderr.decode(errors="replace").strip().splitlines()
            raise RepositoryError(message[-1] if message else f"git {arguments[0]} failed")
        return completed.stdout
