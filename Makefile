# The two commands a user needs: `make demo` and `make test`.
# Both install what they need first (`make install`, idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
# STACK=mmdet3.3: MMDetection 3.3 without MMRotate; STACK=onedl: the OneDL
# fork, MMDetection 3.5 with MMRotate 1.2 (tools/install.sh, docs/install.md)
export VENV STACK

.PHONY: install env test demo study gpu-wheels gpu-check clean

install:  ## create $(VENV) with a verified OpenMMLab stack (STACK=full, mmdet3.3 or onedl) and this package
	@bash tools/install.sh

env: install  ## versions, compiled ops and repairs; non-zero exit if broken
	@$(PY) ds2d2_mmrazor/env.py report

test: install  ## the test suite (CPU, tiny models, generated data)
	$(PY) -m pytest tests

demo: install  ## the built-in demo: DS2D2 on synthetic data, CPU, 9-17 min on 2 cores
	$(PY) tools/demo.py --out work_dirs/demo

study: install  ## the seeds x methods x ablations study of the README (Results)
	$(PY) tools/study --out work_dirs/study --seeds 0 1 2 3 4 \
	  --schedule 0.5 2 --schedule-seeds 0 1 --jobs 2 --threads 1

gpu-wheels: install  ## .whl/: the stack's wheels (CPython 3.12) and mmcv's sdist, for gpu-check on a machine without network
	@bash tools/gpu_check.sh --fetch-wheels

gpu-check:  ## the GPU check (docs/gpu.md): builds mmcv from .whl/ if there, then runs tools/gpu_check.py on cuda
	@bash tools/gpu_check.sh --device cuda

clean:  ## remove the virtualenv and caches of this checkout (keeps the mmcv wheel cache)
	rm -rf $(VENV) .pytest_cache *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
