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
# libgammu-dev and pkg-config build python-gammu (the sms notifier, tested on Gammu's dummy driver).
APT_TEST := mosquitto mosquitto-clients influxdb victoria-metrics prometheus-alertmanager socat \
  systemd openssl chromium poppler-utils
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint bench chaos apt-base apt-test clean

apt-base:
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get -o DPkg::Lock::Timeout=600 install -y -q \
	    --no-install-recommends python3 python3-venv python3-pip; }

apt-test: apt-base
	@dpkg -s $(APT_TEST) >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get -o DPkg::Lock::Timeout=600 install -y -q \
	    --no-install-recommends $(APT_TEST); }

$(VENV)/.stamp-install: pyproject.toml | apt-base
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

demo: $(VENV)/.stamp-install
	$(VENV)/bin/depotwatch demo

lint: $(VENV)/.stamp-install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Two pytest-xdist workers, each with its own servers on free ports; the modules that load the
# machine are one unit of work (tests/conftest.py HEAVY).
test: apt-test $(VENV)/.stamp-install lint
	$(PY) -m pytest -q -n 2 --dist loadfile

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
