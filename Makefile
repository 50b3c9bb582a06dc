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

.PHONY: setup run test readme-check readme clean

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

clean:
	rm -rf $(VENV) outputs
