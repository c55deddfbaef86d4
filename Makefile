# Rempart: the commands a newcomer needs. Only Python >= 3.11 and make are assumed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench serve install clean

$(STAMP): requirements.lock pyproject.toml verifier/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e . -e verifier
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/rempart demo

serve: $(STAMP)
	$(BIN)/rempart serve

# Tests that compare response times (known vs unknown accounts) run alone, after the parallel
# suite, so that another test on the other core does not decide their outcome.
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m "not timing" $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m timing $(PYTEST_ARGS) || [ $$? -eq 5 ]  # 5: PYTEST_ARGS chose none of them

lint: $(STAMP)
	$(BIN)/ruff check src tests bench verifier
	$(BIN)/ruff format --check src tests bench verifier
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
