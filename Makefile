# `make reproduce` runs the article reproduction, `make test` the test suite.
# Both create .venv and install the package into it when needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOGDIR ?= logs
STAMP := $(VENV)/.installed

.PHONY: reproduce test tensorboard clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

reproduce: $(STAMP)
	$(BIN)/reproduce article --logdir $(LOGDIR)

test: $(STAMP)
	$(BIN)/python -m pytest

tensorboard: $(STAMP)
	$(BIN)/reproduce tensorboard $(LOGDIR)

clean:
	rm -rf $(VENV) *.egg-info
