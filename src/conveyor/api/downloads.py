"""How stored files (uploaded inputs and step artifacts) leave the server: always as a
download, in a sandbox, and with a content type a browser cannot run. An uploaded
``page.html`` or ``drawing.svg`` served as such from this origin could run script with the
viewer's session; here it arrives as ``application/octet-stream``. Media the UI shows inline
(pictures, video, audio) and plain data keep their type: browsers do not run those.
"""

from __future__ import annotations

import mimetypes
from urllib.parse import quote

SAFE_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/bmp",
        "video/mp4",
        "video/webm",
        "video/quicktime",
        "audio/mpeg",
        "audio/wav",
        "audio/x-wav",
        "audio/ogg",
        "audio/flac",
        "audio/mp4",
        "text/plain",
        "text/csv",
        "application/json",
        "application/vnd.apache.parquet",
        "application/zip",
        "application/gzip",
    }
)
OPAQUE = "application/octet-stream"
SANDBOX_POLICY = "sandbox; default-src 'none'"


def download_media_type(path: str) -> str:
    """The file's type if a browser cannot run it, else ``application/octet-stream``."""
    guessed = mimetypes.guess_type(path)[0]
    return guessed if guessed in SAFE_TYPES else OPAQUE


def download_headers(path: str) -> dict[str, str]:
    filename = path.rsplit("/", 1)[-1].replace('"', "")
    return {
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename, safe='')}",
        "Content-Security-Policy": SANDBOX_POLICY,
    }
