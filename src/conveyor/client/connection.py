"""Where the server is and who is calling: an explicit URL and token, else the environment
(``CONVEYOR_URL``, ``CONVEYOR_TOKEN``), else ``http://127.0.0.1:8321`` without a token (a
``conveyor up --no-auth`` on this machine)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import httpx

import conveyor
from conveyor.client.errors import ConveyorClientError

DEFAULT_URL = "http://127.0.0.1:8321"
API_PREFIX = "/api/v1"
CONNECT_SECONDS = 10.0


@dataclass(frozen=True)
class Connection:
    url: str  # the server's root (with its root path, if behind a proxy), no trailing slash
    token: str | None
    timeout: float

    @classmethod
    def resolve(cls, url: str | None, token: str | None, timeout: float) -> Connection:
        chosen = url or os.environ.get("CONVEYOR_URL") or DEFAULT_URL
        return cls(_root_url(chosen), token or os.environ.get("CONVEYOR_TOKEN") or None, timeout)

    @property
    def api(self) -> str:
        return self.url + API_PREFIX

    def headers(self) -> dict[str, str]:
        headers = {"User-Agent": f"conveyor-client/{conveyor.__version__}"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def client_options(self, **extra: Any) -> dict[str, Any]:
        """Arguments for ``httpx.Client`` and ``httpx.AsyncClient``."""
        return {
            "base_url": self.api,
            "headers": self.headers(),
            "timeout": httpx.Timeout(self.timeout, connect=min(CONNECT_SECONDS, self.timeout)),
            **extra,
        }

    def __repr__(self) -> str:  # never the token
        return f"Connection(url={self.url!r}, token={'set' if self.token else 'none'})"


def _root_url(url: str) -> str:
    cleaned = url.strip().rstrip("/")
    if not cleaned.startswith(("http://", "https://")):
        raise ConveyorClientError(
            f"the Conveyor URL must start with http:// or https://, got {url!r} "
            f"(e.g. {DEFAULT_URL}; argument url= or CONVEYOR_URL)"
        )
    return cleaned.removesuffix(API_PREFIX)
