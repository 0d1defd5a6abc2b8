# Two entry points for a newcomer (see README): `make run` and `make test`.
# Everything else here is plumbing they share.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
RUN_DIR ?= $(CURDIR)/.run

.PHONY: run test bench clean

$(BIN)/scadad: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

## run: the daemon on its embedded SQLite store with the built-in simulated plant
## (state under .run/) and the operator console on it; quitting the console (q) stops both.
## Without a terminal (a pipe, a CI log) it prints the status and streams live values instead.
run: $(BIN)/scadad
	@mkdir -p $(RUN_DIR)
	@printf '[site]\nname = "demo"\n[paths]\ndata_dir = "%s/data"\n[api]\nsocket = "%s/scadad.sock"\n%b\n' \
		"$(RUN_DIR)" "$(RUN_DIR)" '[auth]\nlocal_admin = true  # single-user demo: your Unix user is the administrator' \
		> $(RUN_DIR)/scadad.toml
	@echo "scadad: socket $(RUN_DIR)/scadad.sock, simulated plant on loopback, log in $(RUN_DIR)/scadad.log"
	@echo "in another shell: export SCADA_SOCKET=$(RUN_DIR)/scadad.sock PATH=$(CURDIR)/$(BIN):\$$PATH; scadactl tag list"
	@$(BIN)/scadad --config $(RUN_DIR)/scadad.toml --simulate >>$(RUN_DIR)/scadad.log 2>&1 & pid=$$!; \
	  trap 'kill -TERM $$pid 2>/dev/null; wait $$pid' INT TERM; \
	  for i in $$(seq 50); do [ -S $(RUN_DIR)/scadad.sock ] && break; sleep 0.1; done; \
	  if [ -t 0 ] && [ -t 1 ]; then \
	    $(BIN)/scadactl --socket $(RUN_DIR)/scadad.sock console; \
	  else \
	    sleep 2; \
	    $(BIN)/scadactl --socket $(RUN_DIR)/scadad.sock status; \
	    $(BIN)/scadactl --socket $(RUN_DIR)/scadad.sock tag list 'sim/**'; \
	    $(BIN)/scadactl --socket $(RUN_DIR)/scadad.sock tag watch 'sim/*/power_total' 'sim/*/ac_power' \
	      'sim/*/tank_level' 'sim/*/fuel_level' --interval 2000; \
	  fi; \
	  kill -TERM $$pid 2>/dev/null; wait $$pid

## test: the whole suite (PostgreSQL tests need the server on 127.0.0.1:5432; CI=true makes its absence a failure)
test: $(BIN)/scadad
	$(BIN)/python -m pytest -q

bench: $(BIN)/scadad
	$(BIN)/python bench/api_latency.py
	$(BIN)/python bench/historian.py
	$(BIN)/python bench/acquisition.py
	$(BIN)/python bench/console.py
	$(BIN)/python bench/alarms.py
	$(BIN)/python bench/energy.py

clean:
	rm -rf $(VENV) $(RUN_DIR) .pytest_cache .hypothesis *.egg-info
