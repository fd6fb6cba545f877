# Two entry points for humans and CI: `make demo` and `make test`.
# Everything the project needs is installed from here (system packages, a venv).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test venv buildgrid system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# BuildGrid, the REAPI server of the remote-cache tests, in its own venv (it needs Python >= 3.13).
buildgrid:
	bash scripts/buildgrid-venv.sh .venv-buildgrid

system-deps:
	bash scripts/system-deps.sh

# The whole life on examples/monorepo with nothing configured and nothing running (scripts/demo.sh).
demo: system-deps venv
	@bash scripts/demo.sh

# pytest exits 5 when it collected no tests; that must fail, not pass quietly.
test: system-deps venv buildgrid
	$(BIN)/python -m pytest -n auto -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

clean:
	rm -rf $(VENV) .venv-buildgrid .pytest_cache .hypothesis
