# The README's two commands: `make run` and `make test`. Both set everything up from a bare clone.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
SANDBOX_PORT ?= 8100
PORT ?= 8000
# The sandbox and the development tools (load_demo, run_sandbox, the benchmarks) are installed only when asked
# for (config/settings.py): `make run` and `make test` ask, whatever DEBUG says.
run test: export STOCKLINE_DEVTOOLS = true

.PHONY: install run test lint migrate clean

$(INSTALLED): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(INSTALLED)

install: $(INSTALLED)

migrate: install
	$(PY) manage.py migrate --noinput

# Starts the sandbox (emulated marketplaces), loads the demo, then the worker with beat and the admin
# (devtools' run_demo). Ctrl-C stops all of them, a worker still busy after 10 s included.
run: migrate
	$(PY) manage.py run_demo --port $(PORT) --sandbox-port $(SANDBOX_PORT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

# The browser tests drive Debian's Chromium: installed here when missing and possible (as root with apt),
# otherwise those tests skip and say why. Never `playwright install`.
test: install
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		apt-get install -y -qq chromium >/dev/null 2>&1; } || echo "chromium not installed: browser tests will skip"
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest

clean:
	rm -rf $(VENV) var
