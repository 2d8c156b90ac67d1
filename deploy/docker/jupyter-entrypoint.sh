#!/bin/bash
# JupyterLab of the compose stack (jupyter.Dockerfile). It runs code for whoever holds the
# token, so it refuses to start without a strong JUPYTER_TOKEN (Jupyter reads the variable).
set -euo pipefail
token=${JUPYTER_TOKEN:-}
if [ "${#token}" -lt 16 ]; then
    echo "conveyor-jupyter: JUPYTER_TOKEN is unset or shorter than 16 characters; add one to" \
        "deploy/compose/.env (docs/deploy.md, 'Notebooks in the stack')" >&2
    exit 64
fi
# The example notebooks, copied into the notebooks volume once (later edits are kept).
mkdir -p "$HOME/work"
for notebook in "$HOME"/examples/*.ipynb; do
    [ -e "$HOME/work/$(basename "$notebook")" ] || cp "$notebook" "$HOME/work/"
done
exec jupyter lab --ip=0.0.0.0 --port=8888 --no-browser --ServerApp.root_dir="$HOME/work" "$@"
