#!/usr/bin/env bash
# Wait (up to $1 seconds, default 15) until Redis answers PING on $REDIS_PORT, so the worker in
# `make dev` does not race the redis-server started next to it.
set -euo pipefail
port="${REDIS_PORT:-6379}"
deadline=$((SECONDS + ${1:-15}))
until [[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" == "PONG" ]]; do
    if ((SECONDS >= deadline)); then
        echo "wait-for-redis: nothing answered on 127.0.0.1:$port" >&2
        exit 1
    fi
    sleep 0.2
done
