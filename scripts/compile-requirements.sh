#!/usr/bin/env bash
# Re-pin requirements.txt (runtime + web extra) and requirements-dev.txt (+ dev, otel and memory extras)
# from pyproject.toml. Uses uv when it is on PATH, else installs it into a throwaway venv.
# The output never names a package index: pins only, so the files work behind any mirror.
set -euo pipefail
cd "$(dirname "$0")/.."

uv_bin="$(command -v uv || true)"
tmp=""
if [[ -z "$uv_bin" ]]; then
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    python3 -m venv "$tmp/venv"
    "$tmp/venv/bin/pip" install -q uv
    uv_bin="$tmp/venv/bin/uv"
fi

compile() {  # compile OUTPUT EXTRA...
    local out="$1"; shift
    local extras=()
    for e in "$@"; do extras+=(--extra "$e"); done
    # uv keeps the pins of an existing output file unless the ranges rule them out, so adding
    # one dependency does not upgrade every other one
    if [[ -f "$out" ]]; then cp "$out" "$out.tmp"; fi
    "$uv_bin" pip compile pyproject.toml "${extras[@]}" \
        --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
        --no-header --no-emit-index-url --quiet -o "$out.tmp"
    {
        echo "# Pinned by scripts/compile-requirements.sh (make requirements) from pyproject.toml; do not edit."
        grep -v -E '^\s*(-i|--(extra-)?index[-]url|-f|--find-links|--trusted-host)\b' "$out.tmp"
    } >"$out"
    rm -f "$out.tmp"
}

compile requirements.txt web
compile requirements-dev.txt web dev otel memory

if grep -n -E '://|--index|--find-links|--trusted-host' requirements.txt requirements-dev.txt; then
    echo "compile-requirements: an index URL slipped into the output; refusing" >&2
    exit 1
fi
echo "compile-requirements: wrote requirements.txt and requirements-dev.txt"
