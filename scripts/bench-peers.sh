#!/usr/bin/env bash
# Build one virtualenv per benchmark peer under bench/.venvs/<name> (git-ignored), idempotently:
# a venv whose installed set matches its pins is left alone. The peers bring redis-py 6 to 8
# (taskiq-redis needs 8, pydocket 6+), which conflicts with arq 0.28's redis<6, so they never go
# into the project's .venv.
#   scripts/bench-peers.sh            # every peer
#   scripts/bench-peers.sh saq        # some
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
declare -A PINS=(
    # SAQ imports typing_extensions without declaring it
    # uvloop: bench.clients runs every system's producer on it, as the project's own .venv has it
    [saq]="saq[redis,hiredis]==0.26.4 typing-extensions>=4.12 uvloop>=0.21"
    [taskiq]="taskiq==0.13.0 taskiq-redis==1.2.4 hiredis>=3 uvloop>=0.21"
    [pydocket]="pydocket==0.27.0 hiredis>=3 uvloop>=0.21"
)
peers=("$@")
[[ ${#peers[@]} -gt 0 ]] || peers=(saq taskiq pydocket)

for name in "${peers[@]}"; do
    pins="${PINS[$name]:-}"
    [[ -n "$pins" ]] || { echo "bench-peers: unknown peer '$name' (choose from: ${!PINS[*]})" >&2; exit 2; }
    venv="bench/.venvs/$name"
    stamp="$venv/.pins"
    if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$pins" ]]; then
        echo "bench-peers: $venv is up to date ($pins)"
        continue
    fi
    echo "bench-peers: building $venv ($pins)"
    "$PYTHON" -m venv "$venv"
    # shellcheck disable=SC2086  # the pins are words on purpose
    "$venv/bin/python" -m pip install -q --disable-pip-version-check $pins
    echo "$pins" >"$stamp"
done
