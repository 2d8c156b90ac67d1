# JupyterLab with the Conveyor client, for the compose stack's optional `notebooks` profile
# (docs/deploy.md, "Notebooks in the stack"). Built on the Conveyor image, so the client,
# pandas, pyarrow and polars are the versions the cluster runs. From the repository root, after
# `make image`:  make image-jupyter
ARG CONVEYOR_IMAGE=conveyor:latest
FROM ${CONVEYOR_IMAGE}
USER root
COPY deploy/docker/certs/ /tmp/certs/
COPY deploy/docker/jupyter-requirements.txt deploy/docker/requirements.lock /tmp/
# Constrained by the image's lock: JupyterLab never moves a package Conveyor runs on.
RUN set -eu; \
    if [ -s /tmp/certs/ca-bundle.pem ]; then export PIP_CERT=/tmp/certs/ca-bundle.pem; fi; \
    /opt/conveyor/bin/pip install --quiet --no-cache-dir -c /tmp/requirements.lock \
        -r /tmp/jupyter-requirements.txt; \
    /opt/conveyor/bin/pip check; \
    rm -rf /tmp/certs /tmp/jupyter-requirements.txt /tmp/requirements.lock
COPY --chown=conveyor:conveyor examples/*.ipynb /home/conveyor/examples/
COPY deploy/docker/jupyter-entrypoint.sh /usr/local/bin/conveyor-jupyter
USER conveyor
WORKDIR /home/conveyor
HEALTHCHECK --interval=15s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8888/api', timeout=8)"]
ENTRYPOINT ["/usr/local/bin/conveyor-jupyter"]
CMD []
