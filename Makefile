# The two commands a newcomer needs: `make demo` and `make test`.
# Both create or reuse .venv and install what the project needs first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.gridex-installed

.PHONY: demo demo-flex test lint typecheck pytest bench proto clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

node_modules/.gridex-installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

demo: $(STAMP)
	$(BIN)/gridex demo

# batteries and EVs cleared over a rolling horizon, noon to night (about 4 minutes)
demo-flex: $(STAMP)
	$(BIN)/gridex demo --flex --start-hour 9 --intervals 40 --report gridex-report-flex

test: $(STAMP) node_modules/.gridex-installed lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

proto: $(STAMP)
	$(BIN)/python -m gridex.v1._generate

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
