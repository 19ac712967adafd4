# Every target creates or reuses .venv and installs what it needs, so a fresh
# machine with Python 3.11+ and make needs no other step.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
IMAGE ?= kube-dingtalk:$(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' kubedingtalk/__init__.py)

.PHONY: help run demo test lint bench bench-quick image clean

help:
	@echo "make demo | test | lint | run | bench | bench-quick | image | clean"

$(STAMP): setup.py
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "kube-dingtalk needs Python 3.11 or newer (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip setuptools
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	KUBE_USE_KUBECONFIG=true $(BIN)/kubedingtalk run

demo: $(STAMP)
	$(BIN)/kubedingtalk demo

test: $(STAMP)
	$(BIN)/python -m pytest

# Manifests are validated as kustomize renders them, against the oldest supported (1.25) and the newest schemas.
lint: $(STAMP)
	$(BIN)/ruff check kubedingtalk tests bench setup.py
	$(BIN)/mypy kubedingtalk
	$(BIN)/hadolint docker/Dockerfile
	@command -v kubectl >/dev/null || { echo "make lint: kubectl is needed to render manifests/ (kubectl kustomize)" >&2; exit 1; }
	kubectl kustomize manifests/ > $(VENV)/manifests.rendered.yaml
	$(BIN)/kubernetes-validate --strict --quiet -k 1.25.0 $(VENV)/manifests.rendered.yaml
	$(BIN)/kubernetes-validate --strict --quiet $(VENV)/manifests.rendered.yaml

# Figures beside their baselines, on the emulators; results in bench/results/latest.json.
bench: $(STAMP)
	$(BIN)/python -m bench.run

bench-quick: $(STAMP)
	$(BIN)/python -m bench.run --quick

image:
	docker build -f docker/Dockerfile -t $(IMAGE) .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
