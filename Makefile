# `make run`: set up (once) and run the main job. `make test`: set up (once) and run the tests.
# `make readme-check`: run every README command at a small size and check its result blocks
# (docs/readme.py check); `make readme`: rerun the result blocks at full size and rewrite them
# (docs/readme.py regenerate; NAMES="main activations" for some only).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test readme-check readme clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	@! $(PY) -m pip list 2>/dev/null | grep -i '^nvidia-' || { echo "CUDA packages were installed: check constraints.txt"; exit 1; }
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m mlpbench -m model.depth=2,4,6,8,10 seed=1,2,3,4,5

test: $(STAMP)
	$(PY) -m pytest

readme-check: $(STAMP)
	$(PY) docs/readme.py check

readme: $(STAMP)
	$(PY) docs/readme.py regenerate $(NAMES)

clean:
	rm -rf $(VENV) outputs
