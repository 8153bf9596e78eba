# Two commands on a fresh Debian machine (as root, or with sudo for the apt step):
#   make demo   - a compressed night at a demo depot, on an embedded broker
#   make test   - lint, type-check and the whole test suite against real servers
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
# Servers the tests start on 127.0.0.1 (never as system services).
# systemd for `systemd-analyze verify` of the unit, openssl for the TLS test certificates,
# chromium for the web console's browser tests (Playwright drives /usr/bin/chromium).
# poppler-utils lets the report tests read the PDF back as text and pictures.
# bash, zsh, man-db and groff-base: the completion scripts are loaded and the man page rendered.
# nut-server: the UPS health tests run Debian's real upsd with its dummy-ups driver.
APT_TEST := mosquitto mosquitto-clients influxdb victoria-metrics prometheus-alertmanager socat \
  nut-server systemd openssl chromium poppler-utils bash zsh man-db groff-base
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo demo-console test lint bench chaos apt-base apt-test clean

apt-base:
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get -o DPkg::Lock::Timeout=600 install -y -q \
	    --no-install-recommends python3 python3-venv python3-pip; }

# Packages whose install enables and starts a system service on Debian; the tests run their own
# servers, so a service this step installed is disabled and stopped again (one installed before
# is left as it was).
APT_SERVICES := mosquitto:mosquitto influxdb:influxdb victoria-metrics:victoria-metrics \
  prometheus-alertmanager:prometheus-alertmanager

apt-test: apt-base
	@dpkg -s $(APT_TEST) >/dev/null 2>&1 || { \
	  new=""; for ps in $(APT_SERVICES); do \
	    dpkg -s $${ps%%:*} >/dev/null 2>&1 || new="$$new $${ps#*:}"; done; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get -o DPkg::Lock::Timeout=600 install -y -q \
	    --no-install-recommends $(APT_TEST) && \
	  if [ -n "$$new" ] && [ -d /run/systemd/system ]; then \
	    echo "disabling the services apt enabled (the tests start their own):$$new"; \
	    $(SUDO) systemctl disable --now $$new || true; fi; }

$(VENV)/.stamp-install: pyproject.toml | apt-base
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# The demo needs depotwatch and its embedded broker only (the `demo` extra), not the test tools.
$(VENV)/.stamp-demo: pyproject.toml | apt-base
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[demo]'
	touch $@

demo: $(VENV)/.stamp-demo
	$(VENV)/bin/depotwatch demo

# The same night, then the web console stays up with a demo officer's login until Ctrl-C.
demo-console: $(VENV)/.stamp-demo
	$(VENV)/bin/depotwatch demo --console

lint: $(VENV)/.stamp-install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Three pytest-xdist workers (most tests wait on servers, timers and subprocesses, so three fit
# 2 cores), each with its own servers on free ports; the modules that load the machine are one
# unit of work (tests/conftest.py HEAVY), run one after another on one worker.
test: apt-test $(VENV)/.stamp-install lint
	$(PY) -m pytest -q -n 3 --dist loadfile

# Throughput, CPU, memory and alarm latency against the bare MQTT client and Node-RED (~3 min;
# not part of `make test`). Node-RED goes into bench/.node-red from npm; without npm it is skipped.
NODE_RED_DIR := bench/.node-red
bench: apt-test $(VENV)/.stamp-install
	@if [ -f $(NODE_RED_DIR)/node_modules/node-red/red.js ] \
	    && [ -f $(NODE_RED_DIR)/node_modules/node-red-contrib-influxdb/influxdb.js ]; then :; \
	elif command -v npm >/dev/null; then \
	  mkdir -p $(NODE_RED_DIR) && cd $(NODE_RED_DIR) && \
	  npm install --no-audit --no-fund --loglevel=error node-red@4 node-red-contrib-influxdb@0.7 \
	  || echo "Node-RED did not install: bench/depot.py runs without the peer and says so"; \
	else echo "npm not found: bench/depot.py runs without the Node-RED peer and says so"; fi
	$(PY) bench/depot.py

# 10 minutes at 1,500 readings/s under SIGKILLs, SIGHUPs, a broker crash, an InfluxDB outage,
# a full disk (a tmpfs state dir, as root), damaged files, API fuzzing and a stolen client id;
# fails on any loss outside the documented windows (README "Nothing lost"). Not in `make test`,
# which runs each fault once (tests/test_chaos.py, `--once`).
CHAOS_SECONDS ?= 600
chaos: apt-test $(VENV)/.stamp-install
	$(PY) tests/chaos.py --seconds $(CHAOS_SECONDS) --rate 1500 --period 20

clean:
	rm -rf $(VENV) demo-state *.egg-info
