#!/usr/bin/env bash
# `make test-docker`: the Docker path proven on a real engine, the way a user meets it.
#   1. scripts/docker-tools.sh: docker.io, debootstrap and a compose v2 plugin, when missing;
#   2. dockerd, started here only if no engine answers, and then stopped here at the end;
#   3. scripts/docker-stand-ins.sh: python:3.11-slim and redis:7 stand-ins (cached);
#   4. pytest tests/docker --docker: `make up` ... `make down` and the compose files' promises.
# Needs root only to install packages, start dockerd or run debootstrap. Idempotent; a rerun on
# the same machine reuses every cache.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VENV:-.venv}"
CACHE_DIR="${SCALR_DOCKER_CACHE:-/var/cache/scalr-docker-test}"
export SCALR_DOCKER_CACHE="$CACHE_DIR"

say() { printf 'test-docker: %s\n' "$*"; }
started=$SECONDS

scripts/docker-tools.sh

dockerd_pid=""
stop_dockerd() {
    [[ -n "$dockerd_pid" ]] || return 0
    say "stopping the dockerd started here (pid $dockerd_pid)"
    kill "$dockerd_pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$dockerd_pid" 2>/dev/null || return 0
        sleep 0.2
    done
    say "dockerd (pid $dockerd_pid) did not stop within 20 s; see $CACHE_DIR/dockerd.log" >&2
}
trap stop_dockerd EXIT

if ! docker info >/dev/null 2>&1; then
    if [[ "$(id -u)" -ne 0 ]]; then
        say "no Docker engine answers, and starting dockerd needs root: run it with sudo" >&2
        exit 1
    fi
    mkdir -p "$CACHE_DIR"
    say "no Docker engine answers: starting dockerd (log: $CACHE_DIR/dockerd.log)"
    dockerd >"$CACHE_DIR/dockerd.log" 2>&1 &
    dockerd_pid=$!
    for _ in $(seq 150); do
        docker info >/dev/null 2>&1 && break
        kill -0 "$dockerd_pid" 2>/dev/null || break
        sleep 0.2
    done
    if ! docker info >/dev/null 2>&1; then
        say "dockerd did not come up; last lines of $CACHE_DIR/dockerd.log:" >&2
        tail -n 20 "$CACHE_DIR/dockerd.log" >&2
        exit 1
    fi
fi
say "engine $(docker version -f '{{.Server.Version}}'), $(docker compose version)"

scripts/docker-stand-ins.sh

status=0
"$VENV/bin/python" -m pytest tests/docker --docker -q "$@" || status=$?
say "done in $((SECONDS - started)) s (exit $status)"
exit "$status"
