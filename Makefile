# Two commands: `make demo` and `make test`. Each sets up what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# One venv, installed in two steps: what the demo needs (the core and the plot extra),
# then what the tests need (the dev extra: every extra and the tools). Each step has its
# stamp, so `make demo` then `make test` adds to the same venv.
DEMO_STAMP := $(VENV)/.installed-demo
STAMP := $(VENV)/.installed-dev

# The compiled build (mypyc; see the README): a wheel made with DNI_ENGINE_COMPILE=1,
# unpacked beside the checkout. The venv itself stays a pure-Python editable install,
# so edited sources always run there; the compiled copy is rebuilt when they change.
COMPILED := .compiled
COMPILED_SITE := $(COMPILED)/site
COMPILED_STAMP := $(COMPILED)/.built
SOURCES := $(shell find dni_engine -name '*.py') setup.py pyproject.toml
# Builds need a C compiler and the headers of the Python the venv runs.
CAN_COMPILE = command -v $${CC:-cc} >/dev/null 2>&1 && $(PY) -c "import os, sysconfig; \
	raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))"
# Run against the compiled copy when there is one.
ON_COMPILED = $(if $(wildcard $(COMPILED_SITE)/dni_engine),PYTHONPATH=$(COMPILED_SITE),)
PYTEST_ARGS := -n 2 --dist loadgroup -p no:cacheprovider --benchmark-disable tests

.PHONY: demo test lint typecheck pytest pytest-compiled compiled bench setup system-deps clean

$(DEMO_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[plot]'
	touch $@

# The dev extra holds the plot extra too, so this stamp also stands for the demo's.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@ $(DEMO_STAMP)

setup: $(STAMP)

# Debian packages the tests need (a real redis-server, a C compiler for the compiled
# build, chromium for the browser tests, driven by Playwright); installed only when missing.
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	command -v $${CC:-cc} >/dev/null 2>&1 || missing="$$missing gcc libc6-dev"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

demo: $(DEMO_STAMP)
	$(PY) -m dni_engine.demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The Flask and FastAPI examples are checked too: they are how a site uses the middleware
# (Django ships no type information).
typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict dni_engine
	$(VENV)/bin/mypy --strict examples/web/fastapi_app.py examples/web/flask_app.py examples/web/shop.py

pytest: $(STAMP) system-deps
	DNI_ENGINE_EXPECT=pure $(VENV)/bin/pytest $(PYTEST_ARGS)

# The same suite against the compiled build, imported ahead of the checkout; the test
# files of parts never compiled run in the pure pass only (PURE_ONLY, tests/conftest.py).
pytest-compiled: compiled
	@if [ -d $(COMPILED_SITE)/dni_engine ]; then \
		DNI_ENGINE_EXPECT=compiled PYTHONPATH=$(COMPILED_SITE) $(VENV)/bin/pytest \
			-o pythonpath= --import-mode=append $(PYTEST_ARGS); \
	else echo "no compiled build on this machine: the pure pass above is the whole test"; fi

compiled: $(COMPILED_STAMP)

# setuptools' build/ folder is removed first: modules left there by an earlier build
# (a file since moved or deleted) would otherwise go into the wheel.
$(COMPILED_STAMP): $(STAMP) $(SOURCES) | system-deps
	rm -rf $(COMPILED) build && mkdir -p $(COMPILED)
	@if ! $(CAN_COMPILE); then \
		echo "no C compiler or Python headers: using the pure-Python build"; \
	elif echo "compiling the per-visit path and the simulation (about a minute)" && \
		DNI_ENGINE_COMPILE=1 $(PY) -m pip wheel --quiet --no-deps -w $(COMPILED)/wheel . && \
		$(PY) -m zipfile -e $(COMPILED)/wheel/*.whl $(COMPILED_SITE); then \
		echo "compiled build ready in $(COMPILED_SITE)"; \
	else \
		rm -rf $(COMPILED_SITE); \
		echo "WARNING: the compiled build failed (see above); only the pure-Python build is tested"; \
	fi
	touch $@

test: lint typecheck pytest pytest-compiled

bench: $(STAMP) system-deps compiled
	mkdir -p .benchmarks
	$(ON_COMPILED) $(VENV)/bin/pytest -o pythonpath= --import-mode=append -p no:cacheprovider \
		benchmarks --benchmark-json=.benchmarks/latest.json
	$(PY) benchmarks/report.py .benchmarks/latest.json

clean:
	rm -rf $(VENV) $(COMPILED) .mypy_cache .ruff_cache .pytest_cache .benchmarks
