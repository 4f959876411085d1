# The two commands a user needs: `make demo` and `make test`.
# Both install what they need first (`make install`, idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
export VENV

.PHONY: install env test demo clean

install:  ## create $(VENV) with the verified OpenMMLab stack and this package
	@bash tools/install.sh

env: install  ## versions, compiled ops and repairs; non-zero exit if broken
	@$(PY) ds2d2_mmrazor/env.py report

test: install  ## the test suite (CPU, tiny models, generated data)
	$(PY) -m pytest tests

demo: install  ## the built-in demo (not built yet: issue #4)
	@echo "make demo: the built-in demo does not exist yet (issue #4 builds it)." >&2
	@exit 2

clean:  ## remove the virtualenv and caches of this checkout (keeps the mmcv wheel cache)
	rm -rf $(VENV) .pytest_cache *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
