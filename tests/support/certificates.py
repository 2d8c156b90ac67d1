"""A throw-away self-signed certificate for a broker of a test's own on 127.0.0.1."""

from __future__ import annotations

import subprocess
from pathlib import Path


def self_signed_certificate(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """(certificate, key) in ``folder``, valid for ``host`` (an IP address) for a day; the
    certificate is its own authority, so clients pass it as their CA file."""
    certificate, key = folder / "cert.pem", folder / "key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-keyout", str(key), "-out", str(certificate), "-subj", f"/CN={host}"]
    command += ["-addext", f"subjectAltName=IP:{host}"]
    subprocess.run(command, check=True, capture_output=True)
    return certificate, key
