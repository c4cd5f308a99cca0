# One command per task. What CI runs (.ci/run) is what a developer runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-s3 lint bench venv system-deps clean screenshots

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

## make run: create the environment and start the registry (SQLite + ./seawall-data, 127.0.0.1:5000)
run: $(STAMP)
	$(BIN)/seawall serve

## make test: install what the tests need (Python deps, skopeo, podman, docker, containerd...) and run every suite on SQLite and PostgreSQL
## in TEST_WORKERS processes (pytest-xdist; the e2e suite stays in one of them), then the functional modules that move blobs
## again with the blobs on S3 (moto). `make test-s3` runs the whole functional suite on S3 (twice as long: not in the budget).
TEST_WORKERS ?= 2
S3_FUNCTIONAL := $(addprefix tests/functional/test_,uploads.py manifests.py concurrency.py fsck.py gc.py gc_concurrency.py \
	scan_workers.py promotion.py retention.py tag_race.py blob_store_listing.py)
test: $(STAMP) system-deps
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup
	SEAWALL_TEST_STORAGE=s3 $(BIN)/python -m pytest -n $(TEST_WORKERS) $(S3_FUNCTIONAL)

test-s3: $(STAMP) system-deps
	SEAWALL_TEST_STORAGE=s3 $(BIN)/python -m pytest -n $(TEST_WORKERS) tests/functional

## make lint: ruff (check + format) and mypy --strict
lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

## make screenshots: the console's pages at 1280 px and 360 px into docs/console/ (browser tests)
screenshots: $(STAMP) system-deps
	SEAWALL_SCREENSHOTS=$(CURDIR)/docs/console $(BIN)/python -m pytest -q -p no:randomly tests/browser

## make bench: Seawall (SQLite, PostgreSQL) vs CNCF Distribution vs nginx sendfile
bench: $(STAMP)
	scripts/system-deps.sh bench
	$(BIN)/python -m bench

system-deps:
	scripts/system-deps.sh

clean:
	rm -rf $(VENV) seawall-data .pytest_cache .mypy_cache .ruff_cache
