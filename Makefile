# `make reproduce` runs the article reproduction, `make beyond` the two experiments beyond
# it (Saxe et al. 2014, Glorot & Bengio 2010), `make test` the test suite.
# Both create .venv and install the package into it when needed, with the exact versions of
# constraints.txt (the ones the suite and the reproduction were verified with).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOGDIR ?= logs
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
CONSTRAINTS := constraints.txt
PIP_INSTALL := $(BIN)/python -m pip install --quiet -c $(CONSTRAINTS)

.PHONY: reproduce beyond test tensorboard clean

# A change of constraints.txt reinstalls: pip then moves every package to its pinned version.
$(STAMP): setup.cfg pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip
	$(PIP_INSTALL) -e '.[test]'
	touch $(STAMP)

# The tests also run sweeps on an embedded Ray instance (`--ray local`).
$(TEST_STAMP): $(STAMP) $(CONSTRAINTS)
	$(PIP_INSTALL) -e '.[test,cluster]'
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
