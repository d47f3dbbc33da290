"""The queue's depth by state, counted by one worker per queue: the reporter.

Every worker of a queue could count the queue at its heartbeat, but then each would export the
same numbers and a ``sum`` in Prometheus would multiply them by the number of workers. Instead a
worker that serves metrics takes the queue's reporter key (``SET`` if absent, ``PX`` three
heartbeats) or renews it if it already holds it, and only then counts, in the same call; the
others export no depth at all. A reporter that dies lets its key expire and another worker takes
over within three heartbeats; one that stops cleanly hands over at once (:func:`release`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..redis._connection import eval_script
from ..redis._keys import failed_key, leases_key, queue_key, reporter_key, workers_key
from ..redis._lua import PRIORITY_BANDS
from ..redis._lua import lua as _lua

# KEYS: reporter, queue, leases, failed, workers. ARGV: worker_id, ttl_ms, now_ms
# Returns nil when another worker is the reporter, else
# {ready, scheduled, running, failed, oldest_ready_age_ms, live_workers}. "ready" counts due jobs
# and a dead worker's jobs whose lease ran out (both wait for a slot); "running", live leases. Queue
# scores carry priority bands (``PRIORITY_BANDS``): each band's due part counts as ready.
REPORT = _lua(
    PRIORITY_BANDS
    + """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return false end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local now = tonumber(ARGV[3])
local due = 0
local oldest = false
local low, high = band_span(KEYS[2])
for b = low or 1, high or 0 do
  local lo = b * W
  due = due + redis.call('ZCOUNT', KEYS[2], lo, lo + now)
  local first = redis.call('ZRANGEBYSCORE', KEYS[2], lo, lo + now, 'WITHSCORES', 'LIMIT', 0, 1)
  if first[2] and (not oldest or tonumber(first[2]) - lo < oldest) then oldest = tonumber(first[2]) - lo end
end
local orphans = redis.call('ZCOUNT', KEYS[3], '-inf', now)
local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
if first[2] and tonumber(first[2]) <= now and (not oldest or tonumber(first[2]) < oldest) then
  oldest = tonumber(first[2])
end
local workers = 0
for _, entry in ipairs(redis.call('HVALS', KEYS[5])) do
  local ok, data = pcall(cjson.decode, entry)
  if ok and type(data) == 'table' and (tonumber(data['expires_ms']) or 0) >= now then workers = workers + 1 end
end
return {
  due + orphans,
  redis.call('ZCARD', KEYS[2]) - due,
  redis.call('ZCARD', KEYS[3]) - orphans,
  redis.call('ZCARD', KEYS[4]),
  oldest and (now - oldest) or 0,
  workers,
}
""",
    allow_oom=True,  # a full Redis is exactly when the depth must still show
)

# KEYS: reporter. ARGV: worker_id. Deletes the key only if this worker holds it.
RELEASE = _lua("""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
""")


@dataclass(frozen=True)
class QueueDepth:
    """One queue's counts at one moment (what the reporter exports)."""

    ready: int
    scheduled: int
    running: int
    failed: int
    oldest_ready_age: float  # seconds
    workers: int


async def report(redis: Any, queue: str, worker_id: str, ttl_s: float) -> QueueDepth | None:
    """Take or renew the reporter role and count the queue; None while another worker holds it."""
    keys = [reporter_key(queue), queue_key(queue), leases_key(queue), failed_key(queue), workers_key(queue)]
    found = await eval_script(redis, REPORT, keys, [worker_id, int(ttl_s * 1000), int(time.time() * 1000)])
    if found is None:
        return None
    ready, scheduled, running, failed, oldest_ms, workers = (int(n) for n in found)
    return QueueDepth(ready, scheduled, running, failed, oldest_ms / 1000, workers)


async def release(redis: Any, queue: str, worker_id: str) -> None:
    """A reporter stopping cleanly: let the next worker's heartbeat take over at once."""
    await eval_script(redis, RELEASE, [reporter_key(queue)], [worker_id])
