# Two entry points for humans and CI: `make demo` and `make test`.
# Everything the project needs is installed from here (system packages, a venv).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := examples/monorepo

.PHONY: demo test venv system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

system-deps:
	bash scripts/system-deps.sh

demo: system-deps venv
	@echo "== dkb build //...   ($(DEMO): lint, then build every package into .dkb/)"
	cd $(DEMO) && ../../$(BIN)/dkb build //...
	@echo
	@echo "== artifacts in the local OCI layout ($(DEMO)/.dkb/oci)"
	@$(BIN)/python scripts/show-artifacts.py $(DEMO)/.dkb/oci/index.json
	@echo
	@echo "== dkb build //... again: everything is a cache hit"
	cd $(DEMO) && ../../$(BIN)/dkb build //...
	@echo
	@echo "== dkb query 'rdeps(//..., //datasets/customers)' --output label_kind"
	cd $(DEMO) && ../../$(BIN)/dkb query 'rdeps(//..., //datasets/customers)' --output label_kind

# pytest exits 5 when it collected no tests; that must fail, not pass quietly.
test: system-deps venv
	$(BIN)/python -m pytest -n auto -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
