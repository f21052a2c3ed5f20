# Two commands for a fresh machine with Python 3.11: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint install migrate seed worker beat relay bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

migrate: install
	$(BIN)/python manage.py migrate --noinput

seed: migrate
	$(BIN)/python manage.py seed_demo

run: seed
	@echo "Serving on http://$(HOST):$(PORT)/ (Ctrl-C stops)"
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Two pytest processes (pytest-xdist), a module per process at a time: most tests wait on
# subprocesses, sockets and the browser, so two share two CPUs well. PYTEST_WORKERS=0 runs serially.
PYTEST_WORKERS ?= 2
test: lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

worker: install
	$(BIN)/celery -A marketplace worker --loglevel=info

beat: install
	$(BIN)/celery -A marketplace beat --loglevel=info

# Publishes what a process wrote to the outbox but could not publish (docs/ARCHITECTURE.md).
relay: install
	$(BIN)/python manage.py relay_outbox

# The performance suite against the bare stack (docs/PERFORMANCE.md): PostgreSQL and Redis from
# DATABASE_URL / REDIS_URL, default postgres://postgres@127.0.0.1:5432/bench_inbox and Redis db 0.
bench: install
	$(BIN)/python -m bench all

bench-quick: install
	$(BIN)/python -m bench all --quick

# The API fuzzers of CI at length: tests/security/test_api_fuzz.py with more examples per
# operation and the coverage phase (every boundary of every parameter), then the stateful one
# against a running daphne (tests/security/test_api_stateful.py) with more sequences. Takes
# several minutes.
.PHONY: fuzz
fuzz: install
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-100} FUZZ_COVERAGE=1 $(BIN)/python -m pytest tests/security/test_api_fuzz.py -q
	FUZZ_STATEFUL_EXAMPLES=$${FUZZ_STATEFUL_EXAMPLES:-100} $(BIN)/python -m pytest tests/security/test_api_stateful.py -q

clean:
	rm -rf $(VENV) .pytest_cache staticfiles

# A VAPID key pair for Web Push, as two .env lines: the public key is the base64url
# uncompressed P-256 point browsers take as `applicationServerKey`; the private key is the
# base64url raw 32-byte scalar that pywebpush (py_vapid) reads. Nothing is written to disk.
.PHONY: vapid-keys
vapid-keys: install
	@$(BIN)/python -c 'from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat; \
	from py_vapid import Vapid; from py_vapid.utils import b64urlencode; \
	v = Vapid(); v.generate_keys(); \
	print("WEBPUSH_VAPID_PUBLIC_KEY=" + b64urlencode(v.public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))); \
	print("WEBPUSH_VAPID_PRIVATE_KEY=" + b64urlencode(v.private_key.private_numbers().private_value.to_bytes(32, "big")))'
