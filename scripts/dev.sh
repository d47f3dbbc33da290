#!/usr/bin/env bash
# `make dev`: the Docker topology without Docker. A local redis-server (reused if one already
# answers on $REDIS_PORT), the app's backend under uvicorn --reload, and its worker, all run by
# honcho from Procfile.dev with prefixed logs. Ctrl-C stops all of them.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VENV:-.venv}"
APP="${APP:-template-app}"
REDIS_PORT="${REDIS_PORT:-6379}"
BACKEND_PORT="${BACKEND_PORT:-8000}"
# Redis's append-only file, one directory per port so two dev Redis never share one.
REDIS_DIR="${REDIS_DIR:-.run/redis-$REDIS_PORT}"

if [[ ! -d "$APP/backend/src" ]]; then
    echo "dev: $APP/backend/src not found (APP=$APP); make new-app NAME=... creates one" >&2
    exit 1
fi

redis_answers() {
    [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == "PONG" ]]
}

# The Procfile's commands see these (honcho runs each through /bin/sh).
export APP REDIS_PORT BACKEND_PORT REDIS_DIR
export REDIS_URL="redis://127.0.0.1:${REDIS_PORT}/0"
export SCALR_QUEUE_TASKS="${SCALR_QUEUE_TASKS:-src.worker}"
export PATH="$(cd "$VENV" && pwd)/bin:$PATH"
export PYTHONUNBUFFERED=1
processes=(redis backend worker)
if redis_answers; then
    echo "dev: a Redis already answers on 127.0.0.1:$REDIS_PORT; reusing it (not starting another)"
    processes=(backend worker)
else
    mkdir -p "$REDIS_DIR"
fi

url="http://127.0.0.1:${BACKEND_PORT}"
cat <<MSG

  $APP is starting (Ctrl-C stops everything):
    backend   $url        (API docs: $url/docs)
    redis     $REDIS_URL   (data in $REDIS_DIR)
    worker    python -m scalr_queue.worker src.worker   (cwd $APP/backend)

  Try it:
    curl -s -X POST $url/invoices/42/send
    curl -s $url/jobs/<job_id from the line above>
    make queue-depth REDIS_PORT=$REDIS_PORT

MSG

exec honcho -f Procfile.dev -d . start "${processes[@]}"
