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
build() {  # DOCKERFILE TAG [MORE_TAG]
    local dockerfile=$1 tag=$2
    shift 2
    local more=()
    for extra in "$@"; do more+=(-t "$extra"); done
    DOCKER_BUILDKIT=0 docker build --network host -f "$context/$dockerfile" \
        --build-arg BASE="$BASE" \
        --build-arg VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)" \
        --build-arg REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
        -t "$tag" "${more[@]}" .
    echo "built $tag"
}

# The dependency stage gets a tag too, so `docker image prune` keeps its cache.
DOCKER_BUILDKIT=0 docker build --network host -f "$context/Dockerfile" --target deps \
    --build-arg BASE="$BASE" -t "$IMAGE-deps:latest" .
# Extra tags name the Conveyor image; the MLflow image gets :latest beside its hash tag.
build Dockerfile "$tag" "$@"
build mlflow.Dockerfile "$IMAGE-mlflow:${tag#*:}" "$IMAGE-mlflow:latest"
