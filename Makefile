# Quick start: `make run` (the bot on embedded defaults) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
# Re-install only when the project's dependencies change.
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

export ANONYMIZED_TELEMETRY := False

.PHONY: setup run chat ingest test bench eval clean

setup: $(STAMP)
	@$(PY) -m ingest --if-missing

$(STAMP):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# The CPU build of torch first: the sentence-transformers extra would
	# otherwise pull a multi-GB CUDA build.
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

# The bot's main job: Telegram when TELEGRAM_BOT_TOKEN is set, otherwise a terminal chat.
run: setup
	@$(PY) -m ingest
	@$(PY) -m bot

chat: setup
	@$(PY) -m bot chat

ingest: setup
	$(PY) -m ingest

test: setup
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -q

eval: setup
	$(PY) -m bot eval

bench: setup
	$(PY) bench/run_all.py

clean:
	rm -rf data/chroma
