# CityTwin: `make run` installs into .venv and runs the default scenario; `make test` runs the test suite.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SCENARIO ?= scenarios/bad_hersfeld.yaml

PYTEST_STATUS_FILE ?= /dev/null

.PHONY: run test lint install bench clean

RUN_STAMP := $(VENV)/.installed-run

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# `make run` needs only the core (the built-in traffic model); the test extra adds SUMO, pytest and the lint tools
$(RUN_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $(RUN_STAMP)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP) $(RUN_STAMP)

install: $(STAMP)

# The default run: one headline what-if per domain, 3 replications each with common random numbers (every delta
# gets a 95% interval or "no clear change"; 3 is the fewest that gives an interval), on 2 worker processes with one
# numba thread each (2 cores, no oversubscription): traffic (main road closed), EV (2030 share), emergency (new
# station). 18 runs (all five variants) took 648 s from a fresh clone at load 3-4, against the 5-minute goal; a
# run took ~43 s wall there, about half of it routing-table repairs, and a fresh clone first compiles the numba kernels
# (docs/bench_traffic.md, "make run"). The second question per domain runs on its own, as does the festival
# (crowd, ~80 s a run):
#   .venv/bin/python run_scenario.py run scenarios/bad_hersfeld.yaml --replications 3 --workers 2 \
#       --variant demand_plus_20 --variant ev_llf
#   .venv/bin/python run_scenario.py run scenarios/bad_hersfeld.yaml --variant festival
ifeq ($(SCENARIO),scenarios/bad_hersfeld.yaml)
RUN_ARGS ?= --replications 3 --workers 2 --variant main_road_closed --variant ev_2030 --variant new_ambulance_station
else
RUN_ARGS ?= --workers 2
endif

run: $(RUN_STAMP)
	NUMBA_NUM_THREADS=1 $(PY) run_scenario.py run $(SCENARIO) $(RUN_ARGS)

# the whole suite takes 5-12 min on 2 cores; after TEST_TIMEOUT_S it is stopped (exit 124) instead of hanging
# (--foreground: Ctrl+C still reaches pytest); a crashed worker fails the run at once, naming its test, instead of
# being replaced (pytest-xdist can hang for ever replacing a crashed worker under --dist loadfile: xdist #784, #1323)
TEST_TIMEOUT_S ?= 2700
test: $(STAMP)
	timeout --foreground --kill-after=60 $(TEST_TIMEOUT_S) $(PY) -m pytest -n 2 --dist loadfile --max-worker-restart=0 -q; status=$$?; \
	if [ $$status -eq 124 ]; then echo "make test: stopped after $(TEST_TIMEOUT_S) s" >&2; fi; \
	echo $$status > $(PYTEST_STATUS_FILE); exit $$status

# static checks run by .ci/run before the tests (configuration in pyproject.toml)
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) -m pip install --quiet --no-deps jupedsim   # its full install pulls a 1.5 GB viewer
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) results .pytest_cache
