#!/usr/bin/env bash
# The core tests against the OLDEST dependency set pyproject.toml allows (make test-lowest).
#   1. a separate virtualenv at $VENV_LOWEST (default .venv-lowest),
#   2. every runtime dependency, the web, otel and memory extras, the test runner and the OpenTelemetry
#      SDK the tracing tests export with at the oldest published
#      release inside its pyproject.toml range (scripts/lowest-requirements.py prints the ranges
#      from pyproject.toml, uv's --resolution lowest-direct picks the lowest; what they depend on
#      resolves to the newest that fits, as a user's fresh install would). uv is installed into
#      that venv from the registry. The venv is made anew whenever pyproject.toml or these two
#      scripts change (nothing left over from an older range), and skipped when a stamp keyed on
#      them says it is in place: a rerun touches no network,
#   3. pytest on the core suite: tests/ without tests/reliability (fault injection with killed
#      processes and long timings: the same library code, exercised by `make test`) and
#      tests/template (the template app pins its own, newest, dependencies).
# Extra pytest arguments are passed through: scripts/test-lowest.sh -k enqueue
set -euo pipefail
cd "$(dirname "$0")/.."

VENV_LOWEST="${VENV_LOWEST:-.venv-lowest}"
PYTHON="${PYTHON:-python3}"
PY="$VENV_LOWEST/bin/python"

say() { printf 'test-lowest: %s\n' "$*"; }

if ! command -v redis-server >/dev/null 2>&1; then
    say "the tests start a real redis-server and there is none on PATH: run make bootstrap first" >&2
    exit 1
fi

stamp_file="$VENV_LOWEST/.scalr-lowest-stamp"
want="$(cat pyproject.toml scripts/lowest-requirements.py scripts/test-lowest.sh | sha256sum | cut -d' ' -f1)"
have="$(cat "$stamp_file" 2>/dev/null || true)"
if [[ "$want" != "$have" || ! -x "$PY" ]]; then
    say "creating virtualenv $VENV_LOWEST"
    rm -rf "$VENV_LOWEST"
    "$PYTHON" -m venv "$VENV_LOWEST"
    "$PYTHON" scripts/lowest-requirements.py --extra web --extra otel --extra memory \
        --pick dev=pytest,pytest-asyncio,pytest-timeout,httpx,opentelemetry-sdk,selenium >"$VENV_LOWEST/requirements-lowest.txt"
    say "installing the lowest allowed versions into $VENV_LOWEST"
    "$PY" -m pip install -q uv
    "$VENV_LOWEST/bin/uv" pip install -q --python "$PY" --resolution lowest-direct \
        -r "$VENV_LOWEST/requirements-lowest.txt"
    "$VENV_LOWEST/bin/uv" pip install -q --python "$PY" --no-deps -e .
    "$PY" -m pip check
    echo "$want" >"$stamp_file"
else
    say "$VENV_LOWEST is up to date"
fi

# what is really installed, read back from the venv rather than echoed from the pins
"$PY" - "$VENV_LOWEST/requirements-lowest.txt" <<'EOF'
import importlib.metadata as md, re, sys
names = [re.split(r"[\[<>=~!; ]", line)[0] for line in open(sys.argv[1]) if not line.startswith("#")]
print("test-lowest: " + ", ".join(f"{name} {md.version(name)}" for name in names))
EOF

exec "$PY" -m pytest -q -p no:cacheprovider --ignore=tests/reliability --ignore=tests/template "$@"
