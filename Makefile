# One command per developer action; CI (.ci/run) and the README use the same ones.
# `make help` lists them.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON      ?= python3
VENV        ?= .venv
PY          := $(VENV)/bin/python
APP         ?= template-app
APP_NAME    := $(notdir $(patsubst %/,%,$(APP)))
NAME        ?=
DEST_DIR    ?= .
QUEUE       ?= default
REDIS_PORT  ?= 6379
BACKEND_PORT ?= 8000
FOLLOW      ?= 1
REDIS_URL_LOCAL := redis://127.0.0.1:$(REDIS_PORT)/0
NETWORK     := scalr-net
REDIS_COMPOSE := services/redis/docker-compose.yml
APP_COMPOSE   := $(APP)/docker-compose.yml
# Directories ruff formats and checks (only those that exist yet).
FMT_PATHS   := $(wildcard scalr_queue tests template-app bench)

export VENV PYTHON

.PHONY: help bootstrap test lint fmt typecheck pytest dev up down logs ps worker-logs queue-depth \
        new-app bench bench-quick reliability requirements clean docs settings-docs test-docker

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "  Variables: APP=$(APP) NAME= QUEUE=$(QUEUE) REDIS_PORT=$(REDIS_PORT) BACKEND_PORT=$(BACKEND_PORT) FOLLOW=$(FOLLOW) VENV=$(VENV)"

bootstrap: ## Install redis-server (if missing), the venv and pinned deps; idempotent and fast on reruns
	@scripts/bootstrap.sh

test: lint ## Bootstrap, then ruff, ruff format --check, mypy and pytest under the branch-coverage gate (what CI runs)
	$(PY) -m pytest -q --cov --cov-report=term-missing

.PHONY: test-lowest
test-lowest: ## The core tests against the oldest versions pyproject.toml allows, in .venv-lowest
	scripts/test-lowest.sh

lint: bootstrap ## ruff check, ruff format --check, mypy and pyright (scalr_queue, tests/typing, the template's backend)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check $(FMT_PATHS)
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy tests/typing
	$(VENV)/bin/pyright --pythonpath $(PY)
	$(VENV)/bin/mypy template-app/backend/src

fmt: bootstrap ## Format the code and apply ruff's safe fixes
	$(VENV)/bin/ruff format $(FMT_PATHS)
	$(VENV)/bin/ruff check --fix .

dev: bootstrap ## Run redis-server, the backend (uvicorn --reload) and the worker locally under honcho
	@APP=$(APP) REDIS_PORT=$(REDIS_PORT) BACKEND_PORT=$(BACKEND_PORT) scripts/dev.sh

up: ## Docker: create the scalr-net network, start services/redis, then build and start APP
	docker network inspect $(NETWORK) >/dev/null 2>&1 || docker network create $(NETWORK)
	docker compose -f $(REDIS_COMPOSE) up -d
	docker compose -f $(APP_COMPOSE) up -d --build

down: ## Docker: stop APP, then the shared Redis unless another app still uses it (its data volume is kept)
	docker compose -f $(APP_COMPOSE) down
	@others="$$(docker ps --filter network=$(NETWORK) --format '{{.Names}}' | grep -vx scalr-redis || true)"; \
	if [ -n "$$others" ]; then \
		echo "down: keeping the shared Redis (scalr-redis): still used by" $$others; \
	else \
		echo "docker compose -f $(REDIS_COMPOSE) down"; \
		docker compose -f $(REDIS_COMPOSE) down; \
	fi

logs: ## Docker: follow APP's logs (backend and worker)
	docker compose -f $(APP_COMPOSE) logs -f --tail=100

ps: ## Docker: show the shared Redis and APP's containers
	docker compose -f $(REDIS_COMPOSE) ps
	docker compose -f $(APP_COMPOSE) ps

worker-logs: ## Docker: follow the <app>-worker container's logs (FOLLOW=0: print them and return)
	docker logs $(if $(filter 1,$(FOLLOW)),-f )--tail=100 $(APP_NAME)-worker

queue-depth: ## Ready, scheduled, in-progress and failed counts of QUEUE (in <app>-backend if it runs, else local Redis)
	@if docker inspect -f '{{.State.Running}}' $(APP_NAME)-backend 2>/dev/null | grep -qx true; then \
		echo "queue-depth: asking inside $(APP_NAME)-backend"; \
		docker exec $(APP_NAME)-backend scalr-queue stats --queue $(QUEUE); \
	else \
		test -x $(VENV)/bin/scalr-queue || { echo "queue-depth: run make bootstrap first" >&2; exit 1; }; \
		echo "queue-depth: asking $(REDIS_URL_LOCAL) (set REDIS_PORT for another port)"; \
		REDIS_URL=$${REDIS_URL:-$(REDIS_URL_LOCAL)} $(VENV)/bin/scalr-queue stats --queue $(QUEUE); \
	fi

new-app: ## Create NAME/ from template-app with its names substituted (make new-app NAME=billing [DEST_DIR=.])
	@test -n "$(NAME)" || { echo "usage: make new-app NAME=billing" >&2; exit 2; }
	@DEST_DIR=$(DEST_DIR) scripts/new-app.sh $(NAME)

bench: bootstrap ## Run the benchmark (bench/)
	$(PY) -m bench.run

bench-quick: bootstrap ## A short benchmark run, for a quick look
	$(PY) -m bench.run --quick

.PHONY: bench-cluster
bench-cluster: bootstrap ## jobs/s and Redis CPU per job: one Redis vs a 3-master cluster vs Sentinel, three queues (bench/cluster.py)
	$(PY) -m bench.cluster

.PHONY: test-dashboard bench-dashboard
test-dashboard: bootstrap ## The dashboard's tests: real Redis, worker and uvicorn, Debian's chromium via Selenium
	$(PY) -m pytest -q -p no:cacheprovider tests/dashboard --no-cov

.PHONY: screenshots
screenshots: bootstrap ## Retake docs/img/dashboard-*.png (the dashboard's browser tests, saving into docs/img)
	SCALR_QUEUE_SCREENSHOT_DIR=docs/img $(PY) -m pytest -q -p no:cacheprovider tests/dashboard/test_browser.py --no-cov \
		-k "overview_shows or every_try"

bench-dashboard: bootstrap ## The dashboard's overview and queue page with 1,000,000 jobs queued (bench/dashboard.py)
	$(PY) -m bench.dashboard

.PHONY: bench-peers-venvs bench-peers
bench-peers-venvs: ## Build the benchmark peers' own venvs (SAQ, taskiq) in bench/.venvs; idempotent
	scripts/bench-peers.sh

bench-peers: bootstrap bench-peers-venvs ## bench-quick with the peers (SAQ, taskiq) beside arq and scalr_queue
	$(PY) -m bench.run --quick

.PHONY: bench-tracing
bench-tracing: bootstrap ## What OpenTelemetry tracing costs per job: enqueue and drain with it off and on
	$(PY) -m bench.tracing

.PHONY: bench-web
bench-web: bootstrap ## The web scenario alone: the template's enqueue route vs the same route without the enqueue (installs wrk)
	command -v wrk >/dev/null || apt-get install -y wrk || echo "no wrk: the web scenario falls back to an httpx client"
	$(PY) -m bench.run --quick --only web --systems scalr

.PHONY: bench-cancel
bench-cancel: bootstrap ## Cancel latency of a running job, p50/p99, two real workers (bench/cancel.py)
	$(PY) -m bench.cancel

.PHONY: bench-priority
bench-priority: bootstrap ## The plain enqueue and drain before and after priorities, in one run (bench/priority.py)
	$(PY) -m bench.priority

.PHONY: bench-limits
bench-limits: bootstrap ## What limits cost the plain path, against main in one run, and a parked flood (bench/limits.py)
	$(PY) -m bench.limits

.PHONY: bench-sender
bench-sender: bootstrap ## The enqueue sender with redis-py's encoder against a hand-written RESP packer
	$(PY) -m bench.sender

.PHONY: bench-processes
bench-processes: bootstrap ## One worker process against --processes 2, for a no-op and a CPU-bound job body (bench/processes.py)
	$(PY) -m bench.processes

.PHONY: bench-hotpath
bench-hotpath: bootstrap ## The worker's hot path (drains, idle pickup) against main, side by side in one run (bench/hotpath.py)
	$(PY) -m bench.hotpath

reliability: bootstrap ## The long reliability suite (tests/reliability --full)
	$(PY) -m pytest tests/reliability --full -q

docs: bootstrap ## Build the documentation site from docs/ into site/ (mkdocs-material; --strict: a broken link fails)
	@# not --quiet: it hides the warnings that --strict counts
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

settings-docs: bootstrap ## Regenerate docs/settings.md and .env.shared from scalr_queue/_settings.py
	$(PY) -m scalr_queue._settings_doc

.PHONY: test-sentinel
test-sentinel: bootstrap ## Sentinel failover on loopback (1 master, 2 replicas, 3 sentinels): SIGKILL, switchover, MIN_REPLICAS
	$(PY) -m pytest tests/reliability/test_sentinel_failover.py --sentinel -q

.PHONY: test-cluster
test-cluster: bootstrap ## Redis Cluster on loopback (3 masters + 3 replicas): three queues on three shards, master SIGKILL
	$(PY) -m pytest tests/cluster --cluster -q --no-cov --timeout 120

test-docker: bootstrap ## Docker: make up/down and the compose promises on a real engine (as root the first time)
	@scripts/test-docker.sh

requirements: ## Re-pin requirements.txt and requirements-dev.txt from pyproject.toml
	scripts/compile-requirements.sh

clean: ## Remove caches and make dev's local Redis data (.run/); keeps the venv
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -prune -exec rm -rf {} +

.PHONY: bench-finish
bench-finish: bootstrap ## What the try history and finished index cost FINISH, before against now (bench/finish.py)
	$(PY) -m bench.finish
