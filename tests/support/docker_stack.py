"""Images and a compose project for tests/deploy: everything built here from Debian packages.

Docker Hub is not reachable on the test machines, so the base image comes from debootstrap and
the third-party services run from a stand-in image (tests/deploy/standins). Built images are
tagged with a hash of their inputs and reused when the hash matches.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "conveyor-base:bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
STANDINS = ROOT / "tests" / "deploy" / "standins"
COMPOSE_FILE = ROOT / "deploy" / "compose" / "docker-compose.yml"
TEST_OVERRIDE = ROOT / "tests" / "deploy" / "compose.test.yml"


def require_docker() -> None:
    """Skip unless a Docker engine answers (scripts/test-services.sh starts one); in CI, fail."""
    missing = [
        tool for tool in ("docker", "docker-compose", "debootstrap") if not shutil.which(tool)
    ]
    if missing:
        _skip_or_fail(f"{', '.join(missing)} not installed: run scripts/test-services.sh")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        _skip_or_fail("no Docker engine answers: run scripts/test-services.sh")


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the compose stack test, but {reason}")
    pytest.skip(reason)


def run(command: Sequence[str], log: Path | None = None, **kwargs) -> str:  # type: ignore[no-untyped-def]
    """Run a command; on failure raise with the end of its output (or of ``log``)."""
    kwargs.setdefault("timeout", 1800)
    if log is None:
        done = subprocess.run(command, capture_output=True, text=True, **kwargs)
        output = done.stdout + done.stderr
    else:
        with log.open("w") as file:
            done = subprocess.run(
                command, stdout=file, stderr=subprocess.STDOUT, text=True, **kwargs
            )
        output = log.read_text()
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{output[-4000:]}")
    return done.stdout if log is None else output


def image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def ensure_base_image() -> str:
    """The debootstrap image with Python 3.11 that stands in for python:3.11-slim-bookworm."""
    if image_exists(BASE_IMAGE):
        return BASE_IMAGE
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="conveyor-base-") as folder:
        root = Path(folder) / "root"
        packages = "--include=python3,python3-venv,python3-pip,ca-certificates"
        run(["debootstrap", "--variant=minbase", packages, "bookworm", str(root), DEBIAN_MIRROR])
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        run(["docker", "import", "-c", "ENV LANG=C.UTF-8", "-", BASE_IMAGE], stdin=tar.stdout)
        tar.wait()
    return BASE_IMAGE


def ensure_conveyor_images(log: Path) -> tuple[str, str]:
    """deploy/docker/build.sh on the debootstrap base: the Conveyor and the MLflow image.

    Reused while their inputs are unchanged (the tag is a hash of them).
    """
    # PYTHON: the pip that fetches the locked wheels build.sh serves to the image build
    environment = {**os.environ, "BASE": ensure_base_image(), "PYTHON": sys.executable}
    build = str(ROOT / "deploy" / "docker" / "build.sh")
    tag = run([build, "--print-tag"], env=environment).strip()
    mlflow_tag = tag.replace(":", "-mlflow:", 1)
    if not (image_exists(tag) and image_exists(mlflow_tag)):
        run([build], log=log, env=environment)
        remove_older_builds(tag, mlflow_tag)
    return tag, mlflow_tag


def remove_older_builds(*keep: str) -> None:
    """Untag earlier content-hash builds, so runs after code changes do not fill the disk."""
    for repository in {tag.split(":", 1)[0] for tag in keep}:
        listed = run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", repository])
        for tag in listed.split():
            if tag not in keep and re.fullmatch(r"[^:]+:[0-9a-f]{16}", tag):
                subprocess.run(["docker", "image", "rm", tag], capture_output=True)


def ensure_standin_image(log: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(STANDINS.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    digest.update(
        run(["docker", "image", "inspect", "--format", "{{.Id}}", ensure_base_image()]).encode()
    )
    tag = f"conveyor-standins:{digest.hexdigest()[:16]}"
    if not image_exists(tag):
        command = ["docker", "build", "--network", "host", "--build-arg", f"BASE={BASE_IMAGE}"]
        run(
            [*command, "-t", tag, str(STANDINS)],
            log=log,
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
        )
    return tag


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ComposeProject:
    """docker-compose on the shipped file plus the test override, under its own project name."""

    def __init__(self, name: str, env_file: Path, environment: dict[str, str]) -> None:
        self.name = name
        self.env_file = env_file
        self.environment = {**os.environ, **environment}

    def __call__(self, *args: str, timeout: float = 900) -> str:
        files = ["-f", str(COMPOSE_FILE), "-f", str(TEST_OVERRIDE)]
        command = ["docker-compose", "-p", self.name, *files, "--env-file", str(self.env_file)]
        return run([*command, *args], env=self.environment, timeout=timeout)

    def container_ids(self, service: str | None = None) -> list[str]:
        filters = ["--filter", f"label=com.docker.compose.project={self.name}"]
        if service:
            filters += ["--filter", f"label=com.docker.compose.service={service}"]
        return run(["docker", "ps", "-aq", *filters]).split()

    def leftovers(self) -> list[str]:
        """Containers, networks and volumes of this project still present."""
        label = f"label=com.docker.compose.project={self.name}"
        found = []
        for kind in ("container", "network", "volume"):
            listing = ["docker", kind, "ls", "-q", "--filter", label]
            if kind == "container":
                listing.insert(3, "-a")
            found += [f"{kind} {name}" for name in run(listing).split()]
        return found

    def ip_of(self, container: str) -> str:
        template = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
        return run(["docker", "inspect", "--format", template, container]).strip()
