#!/usr/bin/env bash
# The dashboard's browser tests drive Debian's chromium through Debian's chromedriver (Selenium
# pointed at both; nothing is downloaded at test time). Install the two packages only when either
# is missing, so a rerun touches no network. Used by `make bootstrap` and `make test-dashboard`.
set -euo pipefail

say() { printf 'install-browser: %s\n' "$*"; }

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    say "no apt-get here: install chromium and its chromedriver with your package manager and rerun" >&2
    exit 1
fi
run() {
    if [[ "$(id -u)" -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
        say "need root to run: $*" >&2; exit 1
    fi
}
say "installing chromium and chromium-driver with apt-get"
run env DEBIAN_FRONTEND=noninteractive apt-get update -qq
run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
