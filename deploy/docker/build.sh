#!/bin/bash
# Build the Conveyor image and the stack's MLflow image (make image).
#   deploy/docker/build.sh [--print-tag] [EXTRA_TAG...]
# BASE=...        base image (default python:3.11-slim-bookworm; must have python3.11 + venv)
# IMAGE=conveyor  repository name (the MLflow image is IMAGE-mlflow). Both are tagged with a
#                 hash of their inputs too, so a build whose inputs did not change is reused.
set -euo pipefail
cd "$(dirname "$0")/../.."
context=deploy/docker
BASE=${BASE:-python:3.11-slim-bookworm}
IMAGE=${IMAGE:-conveyor}

content_hash() {  # Dockerfile, scripts, lock files, project and the base image
    {
        find src "$context" pyproject.toml README.md -type f \
            ! -path '*/__pycache__/*' ! -name '*.pyc' \
            ! -path "$context/certs/*" ! -path "$context/wheels/*" -print0 |
            sort -z | xargs -0 sha256sum
        docker image inspect --format '{{.Id}}' "$BASE" 2>/dev/null || echo "$BASE"
    } | sha256sum | cut -c1-16
}

tag="$IMAGE:$(content_hash)"
if [ "${1:-}" = "--print-tag" ]; then
    echo "$tag"
    exit 0
fi
# The host's CA bundle and the CPU torch wheel, when this machine's pip uses them.
if [ -n "${PIP_CERT:-}" ] && [ -f "$PIP_CERT" ]; then
    cp "$PIP_CERT" "$context/certs/ca-bundle.pem"
fi
for dir in ${PIP_FIND_LINKS:-}; do
    for wheel in "$dir"/torch-*+cpu-*.whl; do
        [ -f "$wheel" ] && cp -u "$wheel" "$context/wheels/"
    done
done

# The locked wheels (and the MLflow image's), fetched or built once on this machine into
# deploy/docker/wheels/ and served to the build on loopback: the image installs them without an
# index and without a compiler, and a rebuild downloads nothing. Only with a Python 3.11 host
# pip (wheel tags must match the image's Python); otherwise the image's pip uses the index.
PYTHON=${PYTHON:-python3}
UV_REQUIREMENT="uv==0.13.9"  # installs the dependency layer, about three times faster than pip
wheels="$context/wheels"
complete=""
if "$PYTHON" -c 'import sys, pip; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    "$PYTHON" -m pip wheel --quiet --no-deps --find-links "$wheels" --wheel-dir "$wheels" \
        -r "$context/requirements.lock" "$UV_REQUIREMENT" setuptools wheel
    "$PYTHON" -m pip wheel --quiet --find-links "$wheels/mlflow" --wheel-dir "$wheels/mlflow" \
        -r "$context/mlflow-requirements.txt"
    complete=1
else
    echo "no Python 3.11 pip here ($PYTHON): the image fetches its dependencies from the index" >&2
fi
# The URL is a build argument, so it is part of the layer cache's key: a port derived from
# the lock keeps it the same from one build to the next (the next free one if it is taken).
port=$("$PYTHON" - "$context/requirements.lock" <<'PORT'
import hashlib, socket, sys
start = 20000 + int(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest(), 16) % 20000
for port in range(start, start + 100):
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) != 0:
            print(port)
            break
PORT
)
"$PYTHON" -m http.server --bind 127.0.0.1 --directory "$wheels" "$port" >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for _ in $(seq 50); do
    "$PYTHON" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/')" \
        2>/dev/null && break
    sleep 0.1
done
wheels_url="http://127.0.0.1:$port"

build() {  # DOCKERFILE TAG [MORE_TAG]
    local dockerfile=$1 tag=$2
    shift 2
    local more=()
    for extra in "$@"; do more+=(-t "$extra"); done
    DOCKER_BUILDKIT=0 docker build --network host -f "$context/$dockerfile" \
        --build-arg BASE="$BASE" \
        --build-arg VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)" \
        --build-arg REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
        --build-arg WHEELS_URL="$wheels_url" --build-arg WHEELS_COMPLETE="$complete" \
        --build-arg UV_REQUIREMENT="$UV_REQUIREMENT" \
        -t "$tag" "${more[@]}" .
    echo "built $tag"
}

# Extra tags name the Conveyor image; the MLflow image gets :latest beside its hash tag.
build Dockerfile "$tag" "$@"
build mlflow.Dockerfile "$IMAGE-mlflow:${tag#*:}" "$IMAGE-mlflow:latest"
