# Two commands do everything on a fresh machine: `make run` and `make test`.
# Installs are idempotent: a stamp file records that an environment matches its lock file.

PYTHON ?= python3.11
VENV := .venv
TFDV_VENV := .venv-tfdv
MAIN_STAMP := $(VENV)/.installed
TFDV_STAMP := $(TFDV_VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install run test lint format compile compile-check lock clean images

install: $(MAIN_STAMP) $(TFDV_STAMP)

# $(call quietly,what,log name,commands): one line while it works, one line with the time when done;
# the installers' output goes to build/install-<log name>.log, shown (its end) only if they fail.
quietly = mkdir -p build; echo "make: installing the $(1) …"; start=$$(date +%s); \
	if ( $(3) ) > build/install-$(2).log 2>&1; then \
		echo "make: $(1) ready in $$(( $$(date +%s) - start ))s (log: build/install-$(2).log)"; \
	else tail -n 40 build/install-$(2).log >&2; \
		echo "make: installing the $(1) failed; full log: build/install-$(2).log" >&2; exit 1; fi
MAIN_INSTALL = { test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV); } && \
	$(VENV)/bin/python -m pip install --quiet --upgrade pip && \
	$(VENV)/bin/python -m pip install --quiet -r requirements/main.lock && \
	$(VENV)/bin/python -m pip install --quiet --no-deps -r requirements/datasets.txt && \
	$(VENV)/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
TFDV_INSTALL = { test -x $(TFDV_VENV)/bin/python || $(PYTHON) -m venv $(TFDV_VENV); } && \
	$(VENV)/bin/uv pip install --quiet --python $(TFDV_VENV)/bin/python -r requirements/tfdv.lock && \
	$(TFDV_VENV)/bin/python -c "import tensorflow_data_validation, tfx_bsl.public.tfxio, dill"

$(MAIN_STAMP): requirements/main.lock requirements/datasets.txt setup.py
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found; set PYTHON=/path/to/python3.11" >&2; exit 1; }
	@$(call quietly,main environment $(VENV) (kfp + torch + mlflow + kserve),main,$(MAIN_INSTALL))
	@touch $@

# The validation environment (TFDV) is separate: its pins conflict with kfp's (see requirements/tfdv.in).
$(TFDV_STAMP): requirements/tfdv.lock $(MAIN_STAMP)
	@$(call quietly,validation environment $(TFDV_VENV) (TFDV),tfdv,$(TFDV_INSTALL))
	@touch $@

run: install
	@echo "make: running the training pipeline on this machine (kfp-cicd run: synthetic demo data, kfp.local)"
	@$(VENV)/bin/kfp-cicd run

test: install
	@echo "make: lint (ruff check, ruff format --check)"
	@$(VENV)/bin/ruff check --quiet .
	@$(VENV)/bin/ruff format --check --quiet .
	@echo "make: compiled pipeline specs up to date (kfp-cicd compile --check)"
	@$(VENV)/bin/kfp-cicd compile --check
	@echo "make: tests (pytest $(PYTEST_ARGS))"
	@$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: $(MAIN_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(MAIN_STAMP)
	$(VENV)/bin/ruff format .

compile: $(MAIN_STAMP)
	$(VENV)/bin/kfp-cicd compile

compile-check: $(MAIN_STAMP)
	$(VENV)/bin/kfp-cicd compile --check

# Re-resolve the lock files from the .in files (needs the package registry).
lock: $(MAIN_STAMP)
	$(VENV)/bin/uv pip compile --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
		requirements/tfdv.in -o requirements/tfdv.lock

# Container images (docker, podman or buildah; see docs/images.md), tagged as `kfp-cicd compile` references
# them (the CPU images and the CUDA runtime GPU tasks use): make images IMAGE_REGISTRY=ghcr.io/you
# IMAGE_TAG=0.1.0 [IMAGE_BUILD_ARGS='--cpu-only | --gpu, --push …']
IMAGE_REGISTRY ?= ghcr.io/kfp-cicd
IMAGE_TAG ?=
IMAGE_BUILD_ARGS ?=
images:
	python3 images/build.py --registry $(IMAGE_REGISTRY) $(if $(IMAGE_TAG),--tag $(IMAGE_TAG)) $(IMAGE_BUILD_ARGS)

clean:
	rm -rf $(VENV) $(TFDV_VENV) build *.egg-info
