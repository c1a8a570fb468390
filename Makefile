# The two commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: bench bulk run test faults soak install install-dev migrate demo lint check-compose check-deploy clean

$(VENV)/bin/activate:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found; set PYTHON=python3"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Reinstall only when a requirements file changed (stamp files).
$(VENV)/.installed: requirements.txt $(VENV)/bin/activate
	$(PIP) install --quiet -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(PIP) install --quiet -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install
	DEBUG=$${DEBUG:-true} $(PY) manage.py migrate --noinput

demo: migrate
	DEBUG=$${DEBUG:-true} $(PY) manage.py load_demo

## make run: venv, install, migrate, demo data, then web + Celery worker + beat (Ctrl-C stops all).
run: demo
	HOST=$(HOST) PORT=$(PORT) PY=$(PY) ./scripts/run.sh

## make test: the whole pytest suite (PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set).
test: install-dev
	$(PY) -m pytest $(PYTEST_ARGS)

## make faults: reliability.md §A7 faults on a stack of our own (PostgreSQL and Redis on spare ports,
## gunicorn, a Celery worker, an SMTP sink); prints the case table (also var/faults-report.md).
faults: install-dev
	$(PY) -m pytest faults -p no:cacheprovider $(PYTEST_ARGS)

## make bulk: the 50,000-row CSV import through the Celery path (issue #15), timed; outside make test.
bulk: install-dev
	$(PY) -m pytest patients/tests/test_bulk_import.py -m bulk -p no:cacheprovider -s $(PYTEST_ARGS)

## make soak: 4 clients for 5 minutes on a generated 1k/10k/90k cohort (L1, L2, L3, L5); var/soak-report.md.
soak: install-dev
	$(PY) scripts/soak.py $(SOAK_ARGS)

## make bench: the app against PostgreSQL's own cost at 1k/10k/90k patients (issue #14); var/bench-report.md.
bench: install-dev
	$(PY) scripts/bench.py $(BENCH_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

check-compose: install-dev
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml

check-deploy: install
	DEBUG=false SECRET_KEY=$$(python3 -c 'import secrets;print(secrets.token_urlsafe(50))') \
	ALLOWED_HOSTS=clinic.example.org DATABASE_URL=sqlite:///:memory: \
	$(PY) manage.py check --deploy --fail-level WARNING

clean:
	rm -rf var/celery-broker var/celerybeat-schedule* staticfiles
