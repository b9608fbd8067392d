# `make reproduce` runs the article reproduction, `make beyond` the two experiments beyond
# it (Saxe et al. 2014, Glorot & Bengio 2010), `make test` the test suite.
# Both create .venv and install the package into it when needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOGDIR ?= logs
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: reproduce beyond test tensorboard clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The tests also run sweeps on an embedded Ray instance (`--ray local`).
$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,cluster]'
	touch $(TEST_STAMP)

reproduce: $(STAMP)
	$(BIN)/reproduce article --logdir $(LOGDIR)

beyond: $(STAMP)
	$(BIN)/reproduce beyond --logdir $(LOGDIR)

test: $(TEST_STAMP)
	$(BIN)/python -m pytest

tensorboard: $(STAMP)
	$(BIN)/reproduce tensorboard $(LOGDIR)

clean:
	rm -rf $(VENV) *.egg-info
