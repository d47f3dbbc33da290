#!/usr/bin/env bash
# Make this checkout runnable on a fresh Debian/Ubuntu machine, idempotently:
#   1. redis-server, redis-sentinel, promtool, chromium and chromedriver (apt-get, only when missing),
#   2. a virtualenv at $VENV (default .venv),
#   3. the pinned dev requirements plus `pip install -e .`, skipped when a stamp keyed on the
#      content of requirements-dev.txt and pyproject.toml says they are already in place,
#      so a rerun touches no network and takes well under a second.
# Used by `make test` and `make dev`; safe to run by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

say() { printf 'bootstrap: %s\n' "$*"; }

as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        say "need root to run: $*  (install sudo, or run it as root)" >&2
        exit 1
    fi
}

apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        say "no apt-get here: install $* with your package manager and rerun" >&2
        exit 1
    fi
    say "installing $* with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# 1. redis-server: tests and `make dev` run a real one on loopback.
if ! command -v redis-server >/dev/null 2>&1; then
    apt_install redis-server
    # Debian's package starts a system service on 6379; we never rely on it, but leave it be.
fi

# 1a. redis-sentinel: the Sentinel failover test runs three sentinels (redis-server in sentinel mode).
if ! command -v redis-sentinel >/dev/null 2>&1; then
    apt_install redis-sentinel
    # Like redis-server, the package may start a system sentinel on 26379; the tests never use it.
fi

# 1b. promtool (Debian's prometheus package): `make test` checks and unit-tests ops/prometheus/.
if ! command -v promtool >/dev/null 2>&1; then
    apt_install prometheus
    # The package may start a Prometheus service; the tests never talk to it, only run promtool.
fi

# 1c. chromium and chromedriver (Debian's): the dashboard's browser tests in `make test`.
"$(dirname "$0")/install-browser.sh"

# 2. The virtualenv.
if [[ ! -x "$VENV/bin/python" ]]; then
    say "creating virtualenv $VENV"
    if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
        # Debian splits venv out of the interpreter package.
        rm -rf "$VENV"
        apt_install python3-venv
        "$PYTHON" -m venv "$VENV"
    fi
fi

# 3. Dependencies, keyed on the files that decide them.
stamp_file="$VENV/.scalr-deps-stamp"
want="$(cat requirements-dev.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
have="$(cat "$stamp_file" 2>/dev/null || true)"
if [[ "$want" != "$have" ]]; then
    say "installing requirements-dev.txt and scalr_queue (editable) into $VENV"
    "$VENV/bin/python" -m pip install -q -r requirements-dev.txt
    "$VENV/bin/python" -m pip install -q --no-deps -e .
    echo "$want" >"$stamp_file"
else
    say "$VENV is up to date"
fi
