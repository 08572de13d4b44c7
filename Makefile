# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
# mosquitto: broker; pcscd + vsmartcard-vpcd: smart cards; swig + libpcsclite-dev: build pyscard;
# sqlite3: the online backup docs/deploy.md gives; systemd (Debian installs it already):
# systemd-analyze, -sysusers and -tmpfiles check the units in deploy/
# prometheus: promtool checks the metrics and the alert rules
# chromium + fonts-noto-cjk: the console's browser tests (Playwright drives this chromium)
# postgresql: the collector's shared store; the tests create and drop their own databases
APT_PACKAGES := postgresql mosquitto sqlite3 systemd pcscd vsmartcard-vpcd swig libpcsclite-dev prometheus chromium fonts-noto-cjk
NODE_STAMP := node_modules/.installed
MPY_STUBS     := build/mpy-stubs
MPY_STUBS_REQ := micropython-esp32-stubs==1.27.0.post1
MPY_STAMP     := $(MPY_STUBS)/.installed

.PHONY: demo test lint typecheck unit system-deps pg-server bench bench-long clean firmware-test firmware-typecheck

$(STAMP): pyproject.toml | system-deps
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# Debian packages the real-component tests need, installed only when missing
# (node and npm count as present when their commands are, whatever installed them).
system-deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi
	@# the tests' own pcscd writes its pid file here, also when they do not run as root
	@[ -w /run/pcscd ] 2>/dev/null || $(SUDO) install -d -m 1777 /run/pcscd

# The tests' PostgreSQL: Debian's cluster answering on 127.0.0.1:$(PG_PORT), trust auth for
# 127.0.0.1 (user postgres). Left alone when a server answers there already, or when
# TRACEEDGE_TEST_PG points the tests at another one; else the cluster is created if absent
# (pg_createcluster), the trust line put first in its pg_hba.conf, and started.
PG_CLUSTER ?= main
PG_PORT    ?= 5432
pg-server: system-deps
	@[ -z "$$TRACEEDGE_TEST_PG" ] || exit 0; \
	pg_isready -q -h 127.0.0.1 -p $(PG_PORT) && exit 0; \
	v=$$(ls /usr/lib/postgresql | sort -n | tail -1); \
	pg_lsclusters -h | awk '{print $$1" "$$2}' | grep -qx "$$v $(PG_CLUSTER)" || \
	  $(SUDO) pg_createcluster -p $(PG_PORT) $$v $(PG_CLUSTER) >/dev/null || exit 1; \
	hba=/etc/postgresql/$$v/$(PG_CLUSTER)/pg_hba.conf; \
	$(SUDO) grep -q '^host all all 127.0.0.1/32 trust' $$hba || \
	  $(SUDO) sed -i '1i host all all 127.0.0.1/32 trust  # the tests (Makefile: pg-server)' $$hba; \
	echo "starting PostgreSQL $$v/$(PG_CLUSTER) on 127.0.0.1:$(PG_PORT)"; \
	$(SUDO) pg_ctlcluster $$v $(PG_CLUSTER) start; \
	for i in $$(seq 100); do pg_isready -q -h 127.0.0.1 -p $(PG_PORT) && exit 0; sleep 0.2; done; \
	echo "PostgreSQL on 127.0.0.1:$(PG_PORT) does not answer: see /var/log/postgresql/"; exit 1

# The real MicroPython interpreter (WebAssembly) for the codec and firmware tests.
$(NODE_STAMP): package.json | system-deps
	npm install --no-audit --no-fund --loglevel=error
	touch $@

# MicroPython stubs: a typeshed of their own, kept out of the venv.
$(MPY_STAMP): Makefile | $(STAMP)
	rm -rf $(MPY_STUBS)
	$(PY) -m pip install -q --target $(MPY_STUBS) '$(MPY_STUBS_REQ)'
	touch $@

# The firmware suite under the real MicroPython interpreter; ends with "N passed, M failed".
firmware-test: $(STAMP) system-deps $(NODE_STAMP)
	$(PY) -m tests.firmware.suite

# The firmware type-checked against the MicroPython (ESP32) stubs.
firmware-typecheck: $(STAMP) $(MPY_STAMP)
	MYPYPATH=$(MPY_STUBS) $(VENV)/bin/mypy --config-file firmware/micropython/mypy.ini --custom-typeshed-dir $(MPY_STUBS)

demo: $(STAMP) system-deps
	$(VENV)/bin/traceedge demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP) firmware-typecheck
	$(VENV)/bin/mypy

unit: $(STAMP) system-deps pg-server $(NODE_STAMP) $(MPY_STAMP)
	$(VENV)/bin/pytest

test: $(STAMP) system-deps lint typecheck unit

bench: $(STAMP) system-deps pg-server
	$(PY) bench/drain.py --records 200000
	$(PY) bench/drain.py --records 200000 --store postgres
	$(PY) bench/intake.py --records 20000
	$(PY) bench/agent_rss.py --records 1000000
	$(PY) bench/validate.py
	$(PY) bench/codecs.py

# The long runs: a million inputs per parser and codec (about 40 min), a 30-minute soak.
bench-long: $(STAMP) system-deps
	$(PY) bench/fuzz.py
	$(PY) bench/soak.py --minutes 30

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache build *.egg-info
