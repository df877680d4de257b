# conventions-intake — every command a developer or CI needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test stress lint typecheck check install clean

run: $(STAMP)  ## the service on its embedded defaults (SQLite, SMTP 127.0.0.1:2525, web 127.0.0.1:8080), or CONFIG=file.toml
	@echo "interface web : http://127.0.0.1:8080/ par défaut ([web] base_url) ; comptes : conventions-intake users add"
	$(BIN)/conventions-intake $(if $(CONFIG),--config $(CONFIG)) serve

test: $(STAMP)  ## the whole test suite (what .ci/run runs)
	$(BIN)/python -m pytest -q

stress: $(STAMP)  ## the timing-sensitive tests ROUNDS times (3) with a core kept busy; logs in var/stress/
	ROUNDS=$(or $(ROUNDS),3) bash .ci/stress.sh

lint: $(STAMP)  ## ruff, and the import rule of docs/architecture.md (import-linter)
	$(BIN)/ruff check intake parsers store notifier templates tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)  ## mypy --strict on the code, the tests and the benchmarks ([tool.mypy] in pyproject.toml)
	$(BIN)/mypy

check: lint typecheck test

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) var build *.egg-info
