# MLflow tracking server of the compose stack: PostgreSQL backend store, artifacts served from
# the shared volume. Its own image because MLflow's server caps pyarrow below the version
# Conveyor runs (docs/deploy.md). Build from the repository root: deploy/docker/build.sh
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="conveyor-mlflow" \
      org.opencontainers.image.description="MLflow tracking server for a Conveyor cluster" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# build.sh serves its wheels on loopback (WHEELS_URL/mlflow/, all of them when WHEELS_COMPLETE=1)
ARG WHEELS_URL=
ARG WHEELS_COMPLETE=
ARG UV_REQUIREMENT=uv==0.13.9
COPY deploy/docker/certs/ /tmp/certs/
COPY deploy/docker/mlflow-requirements.txt /tmp/
RUN set -eu; \
    if [ -s /tmp/certs/ca-bundle.pem ]; then \
        export PIP_CERT=/tmp/certs/ca-bundle.pem SSL_CERT_FILE=/tmp/certs/ca-bundle.pem; fi; \
    source="${WHEELS_URL:+--find-links $WHEELS_URL --find-links $WHEELS_URL/mlflow/}"; \
    if [ "$WHEELS_COMPLETE" = 1 ]; then source="--no-index $source"; fi; \
    python3 -m venv /opt/mlflow /tmp/uv; \
    /tmp/uv/bin/pip install --quiet --disable-pip-version-check $source "$UV_REQUIREMENT"; \
    /tmp/uv/bin/uv pip install --quiet --python /opt/mlflow/bin/python --compile-bytecode \
        --no-cache $source -r /tmp/mlflow-requirements.txt; \
    /opt/mlflow/bin/pip check --disable-pip-version-check; \
    rm -rf /tmp/certs /tmp/uv; \
    useradd --create-home --uid 10001 --user-group conveyor; \
    mkdir -p /data/mlflow-artifacts && chown -R conveyor:conveyor /data
USER conveyor
WORKDIR /home/conveyor
ENV PATH=/opt/mlflow/bin:$PATH PYTHONUNBUFFERED=1 LANG=C.UTF-8
VOLUME ["/data"]
HEALTHCHECK --interval=10s --timeout=10s --start-period=180s --retries=3 \
    CMD ["python3", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:5000/health', timeout=8)"]
# MLFLOW_BACKEND_STORE_URI: postgresql+psycopg://USER:PASSWORD@HOST/DB (set by the compose file).
ENTRYPOINT ["sh", "-c", ": \"${MLFLOW_BACKEND_STORE_URI:?set MLFLOW_BACKEND_STORE_URI}\"; exec mlflow server --host 0.0.0.0 --port 5000 --workers \"${MLFLOW_WORKERS:-1}\" --backend-store-uri \"$MLFLOW_BACKEND_STORE_URI\" --artifacts-destination /data/mlflow-artifacts --allowed-hosts \"${MLFLOW_ALLOWED_HOSTS:-mlflow,mlflow:5000,localhost,localhost:5000,127.0.0.1,127.0.0.1:5000}\" \"$@\"", "mlflow"]
