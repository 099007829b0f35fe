# The README's two commands: `make run` and `make test`. Both set everything up from a bare clone.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
SANDBOX_PORT ?= 8100
PORT ?= 8000
QUEUES := default,orders,inventory,listings,despatch
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

# Starts the sandbox (emulated marketplaces), loads the demo, then the worker with beat and the admin.
# Ctrl-C stops all of them.
run: migrate
	@trap 'kill 0' INT TERM EXIT; \
	$(PY) manage.py run_sandbox --port $(SANDBOX_PORT) & \
	$(PY) manage.py load_demo --sandbox-url http://127.0.0.1:$(SANDBOX_PORT) || exit 1; \
	$(VENV)/bin/celery -A config worker -B -Q $(QUEUES) --concurrency 2 --loglevel INFO & \
	echo ""; echo "Stockline admin: http://127.0.0.1:$(PORT)/admin/  (login printed above)"; echo ""; \
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

# The browser tests drive Debian's Chromium: installed here when missing and possible (as root with apt),
# otherwise those tests skip and say why. Never `playwright install`.
test: install
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		apt-get install -y -qq chromium >/dev/null 2>&1; } || echo "chromium not installed: browser tests will skip"
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest

clean:
	rm -rf $(VENV) var
