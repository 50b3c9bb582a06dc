# `make run`: set up (once) and run the main job. `make test`: set up (once), run the tests, then
# check README's fast result blocks by value.
# `make readme-check`: run every README command at a small size and check its result blocks
# (docs/readme.py check); `make readme`: rerun the result blocks at full size and rewrite them
# (docs/readme.py regenerate; NAMES="main activations" for some only).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Which torch: cpu (constraints.txt) or cuda (constraints-cuda.txt: PyPI's CUDA build, for a
# machine with an NVIDIA GPU). Kept in the environment: once set up with TORCH=cuda, `make run`
# and `make test` keep the CUDA build rather than put the CPU one back.
TORCH ?= $(shell cat $(VENV)/.torch 2>/dev/null || echo cpu)
CONSTRAINTS := $(if $(filter cuda,$(TORCH)),constraints-cuda.txt,constraints.txt)
STAMP := $(VENV)/.installed-$(TORCH)

.PHONY: setup run test readme-check readme clean gpu-bundle gpu-check

setup: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@case "$(TORCH)" in cpu|cuda) ;; *) echo "TORCH=$(TORCH): give cpu or cuda"; exit 2;; esac
	@echo "Setting up $(VENV): mlpbench and the exact versions in $(CONSTRAINTS) (torch: the $(TORCH) build, Lightning,"
	@echo "Hydra, TensorBoard, Optuna, pytest); about 1 minute from a local package index, longer from PyPI."
	@# Another build than the environment has: a new environment (pip would keep the installed
	@# torch, whose 2.13.0+cpu satisfies 2.13.0, and a CUDA build's nvidia-* packages would stay).
	@if [ -f $(VENV)/.torch ] && [ "$$(cat $(VENV)/.torch)" != "$(TORCH)" ]; then echo "Replacing $(VENV) (torch: $$(cat $(VENV)/.torch) build)"; rm -rf $(VENV); fi
	$(PYTHON) -m venv $(VENV)
	rm -f $(VENV)/.installed-*
	$(PY) -m pip install --quiet --disable-pip-version-check -c $(CONSTRAINTS) -e '.[test]'
	@if [ "$(TORCH)" = cpu ]; then ! $(PY) -m pip list 2>/dev/null | grep -i '^nvidia-' || { echo "CUDA packages were installed: check constraints.txt"; exit 1; }; \
	else $(PY) -c "import torch; assert torch.version.cuda, 'torch is no CUDA build: ' + torch.__version__" || exit 1; fi
	echo $(TORCH) > $(VENV)/.torch
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m mlpbench -m model.depth=2,4,6,8,10 seed=auto

# Two test processes (pytest-xdist): most tests wait on the processes they start, so two share
# 2 cores well (the suite took 5:18 against 7:00 in one process, on 2 cores). Then README's and the
# docs' result blocks of up to about two minutes, at full size: a value that differs from what the
# code prints fails (docs/readme.py verify, 6 to 11 minutes on 2 cores).
test: $(STAMP)
	$(PY) -m pytest -n 2
	$(PY) docs/readme.py verify

readme-check: $(STAMP)
	$(PY) docs/readme.py check

readme: $(STAMP)
	$(PY) docs/readme.py regenerate $(NAMES)

# `make gpu-check` on a machine with an NVIDIA GPU (docs/gpu.md): the GPU check, about 8 minutes,
# in this environment (make setup TORCH=cuda). On a bare machine whose python3 has a CUDA torch,
# Lightning and TensorBoard but nothing else of mlpbench's (a cloud GPU image), with no network:
# `make gpu-bundle` here first (it fetches into .gpu/ the wheels such an image lacks, at
# constraints.txt's versions, and Debian's Fashion-MNIST), take the project folder with .gpu/ there,
# and run `make gpu-check PY=python3 BUNDLE=.gpu` (writes gpu-check.md; OUT=FOLDER elsewhere;
# CHECK="--skip tests" and the like: python -m mlpbench.gpu_check --help).
GPU_WHEELS := hydra-core omegaconf antlr4-python3-runtime hydra-joblib-launcher optuna alembic SQLAlchemy Mako \
	colorlog mlxtend lightning lightning-utilities optuna-integration
BUNDLE ?=
OUT ?= .
CHECK ?=

gpu-bundle:
	rm -rf .gpu && mkdir -p .gpu/wheels .gpu/data
	@# Pure-Python wheels built or fetched for any platform; SQLAlchemy's for the image's CPython 3.12.
	for name in $(filter-out SQLAlchemy,$(GPU_WHEELS)); do \
	  $(PYTHON) -m pip wheel --quiet --no-deps -w .gpu/wheels "$$(grep -i "^$$name==" constraints.txt)" || exit 1; done
	$(PYTHON) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	  -d .gpu/wheels "$$(grep -i '^SQLAlchemy==' constraints.txt)"
	cd .gpu && apt-get download dataset-fashion-mnist && dpkg -x dataset-fashion-mnist_*.deb deb && rm dataset-fashion-mnist_*.deb
	mv .gpu/deb/usr/share/datasets/fashion-mnist/* .gpu/data/ && rm -rf .gpu/deb
	@du -sh .gpu

gpu-check:
	@if [ -n "$(BUNDLE)" ]; then $(PY) -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir \
	  --upgrade --target $(abspath $(BUNDLE))/site $(BUNDLE)/wheels/*.whl || exit 1; fi
	PYTHONPATH=$(if $(BUNDLE),$(abspath $(BUNDLE))/site:)$(CURDIR) PYTHONUNBUFFERED=1 $(PY) -m mlpbench.gpu_check \
	  $(if $(BUNDLE),--data-root $(abspath $(BUNDLE))/data) --out $(OUT)/gpu-check.md $(CHECK)

clean:
	rm -rf $(VENV) outputs
