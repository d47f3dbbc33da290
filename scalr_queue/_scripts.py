"""The Lua scripts that make each step of a job's life one atomic round trip.

Vanilla arq claims a job with a WATCH/MULTI transaction per job, re-reads the queue by polling
and finishes a job with several commands. Here:

* ``ENQUEUE`` writes the payload, adds it to the queue and wakes one idle worker (1 round trip);
* ``CLAIM`` takes up to N ready jobs at once, from the queue into the leases set (jobs whose
  worker died first): lease marker set, payloads and try counts returned, and the next due time
  when nothing is ready;
* ``FINISH`` settles a batch of finished jobs (done, retry, requeue, fail) in one call;
* ``RENEW`` extends the leases of the jobs a live worker is still running.

The key prefixes are spliced in from :mod:`scalr_queue._constants`, the one place they live.
"""

from __future__ import annotations

from ._constants import (
    FAILED_JOBS_PREFIX,
    FAILED_PREFIX,
    IN_PROGRESS_PREFIX,
    JOB_PREFIX,
    RESULT_PREFIX,
    RETRY_PREFIX,
)

# Worker-side scripts may run while Redis is at maxmemory (noeviction): a full Redis must still
# drain, and claiming or finishing a job frees at least as much as it writes. Enqueue has no such
# flag, so a full Redis refuses new work loudly instead. (Shebang flags need Redis >= 7.0.)
ALLOW_OOM = "#!lua flags=allow-oom\n"


def _lua(source: str, *, allow_oom: bool = False) -> str:
    return (ALLOW_OOM if allow_oom else "") + (
        source.replace("@JOB@", JOB_PREFIX)
        .replace("@IP@", IN_PROGRESS_PREFIX)
        .replace("@RESULT@", RESULT_PREFIX)
        .replace("@RETRY@", RETRY_PREFIX)
        .replace("@FAILED@", FAILED_PREFIX)
        .replace("@FAILEDJOBS@", FAILED_JOBS_PREFIX)
    )


# KEYS: job, queue, wake, result. ARGV: job_id, score, payload, check_exists (0|1), px (0 = no TTL)
# Returns 1 when written, 0 when a job with this id is queued, running or has a kept result.
ENQUEUE = _lua("""
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[1], KEYS[4]) > 0 then return 0 end
if ARGV[5] ~= '0' then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[5])
else
  redis.call('SET', KEYS[1], ARGV[3])
end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
if redis.call('LLEN', KEYS[3]) == 0 then redis.call('LPUSH', KEYS[3], '1') end
return 1
""")

# KEYS: queue, wake, leases. ARGV: now_ms, count, lease_ms, worker_id
# Returns {ids, payloads, tries, next_score|nil, more(0|1), dues}: dues[i] is the score ids[i] had,
# the time it was due (enqueued, deferred to, retry backoff end, or a dead worker's lease end).
CLAIM = _lua(
    """
local now = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local claimed, fromq, dues = {}, {}, {}
local more = 0
-- 1. jobs whose worker died: their lease ran out. They were claimed first, so they go first.
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'WITHSCORES', 'LIMIT', 0, count)
for e = 1, #expired, 2 do
  local id = expired[e]
  local ip = '@IP@' .. id
  if redis.call('SET', ip, ARGV[4], 'NX', 'PX', lease) then
    claimed[#claimed + 1] = id
    dues[#claimed] = expired[e + 1]
  else
    -- a live worker holds it and its renewal is on the way: follow the lease, never spin on it
    local ttl = redis.call('PTTL', ip)
    if ttl < 0 then ttl = lease end
    redis.call('ZADD', KEYS[3], 'XX', now + ttl, id)
  end
end
-- 2. due jobs from the queue; one more than needed tells whether to wake another worker
if #claimed < count then
  local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, count - #claimed + 1)
  for q = 1, #ids, 2 do
    local id = ids[q]
    if #claimed >= count then more = 1 break end
    fromq[#fromq + 1] = id
    if redis.call('SET', '@IP@' .. id, ARGV[4], 'NX', 'PX', lease) then
      claimed[#claimed + 1] = id
      dues[#claimed] = ids[q + 1]
    else
      local ttl = redis.call('PTTL', '@IP@' .. id)
      if ttl < 0 then ttl = lease end
      redis.call('ZADD', KEYS[3], now + ttl, id)  -- leased already: it belongs with the leases
    end
  end
elseif #expired == 2 * count then
  more = 1
end
local payloads, tries = {}, {}
if #fromq > 0 then redis.call('ZREM', KEYS[1], unpack(fromq)) end
if #claimed > 0 then
  local zargs, jkeys = {}, {}
  for i, id in ipairs(claimed) do
    zargs[#zargs + 1] = now + lease
    zargs[#zargs + 1] = id
    jkeys[i] = '@JOB@' .. id
  end
  redis.call('ZADD', KEYS[3], unpack(zargs))
  payloads = redis.call('MGET', unpack(jkeys))
  for i, id in ipairs(claimed) do tries[i] = redis.call('INCR', '@RETRY@' .. id) end
end
if more == 1 and redis.call('LLEN', KEYS[2]) == 0 then redis.call('LPUSH', KEYS[2], '1') end
local nxt = false
if #claimed < count then
  local q = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local l = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  if q[2] then nxt = q[2] end
  if l[2] and (not nxt or tonumber(l[2]) < tonumber(nxt)) then nxt = l[2] end
end
return {claimed, payloads, tries, nxt, more, dues}
""",
    allow_oom=True,
)

# KEYS: queue, failed, failed-jobs, wake, leases. ARGV: now_ms, failed_max, worker_id, then groups of 5:
#   action, job_id, data1, data2, num
#   D (done)    data1 = result ('' = keep none), num = result px
#   R (retry)   num = new score; counts as a try
#   Q (requeue) num = new score; does not count as a try (shutdown, unknown task on this worker)
#   F (failed)  data1 = failure record, data2 = result ('' = none), num = result px
# R and Q only act while this worker still holds the lease, or while its expired lease is still in
# the leases set (nobody took the job over): after a takeover the job, even finished and gone,
# belongs to the other worker. Returns failed-set entries dropped.
FINISH = _lua(
    """
local now = tonumber(ARGV[1])
local failed_max = tonumber(ARGV[2])
local unleased, dels = {}, {}
local requeued = 0
local failed = 0
for i = 4, #ARGV, 5 do
  local action, id = ARGV[i], ARGV[i + 1]
  local ip = '@IP@' .. id
  if action == 'D' or action == 'F' then
    if action == 'F' then
      redis.call('ZADD', KEYS[2], now, id)
      redis.call('HSET', KEYS[3], id, ARGV[i + 2])
      failed = failed + 1
      if ARGV[i + 3] ~= '' then redis.call('SET', '@RESULT@' .. id, ARGV[i + 3], 'PX', ARGV[i + 4]) end
    elseif ARGV[i + 2] ~= '' then
      redis.call('SET', '@RESULT@' .. id, ARGV[i + 2], 'PX', ARGV[i + 4])
    end
    unleased[#unleased + 1] = id
    dels[#dels + 1] = '@JOB@' .. id
    dels[#dels + 1] = ip
    dels[#dels + 1] = '@RETRY@' .. id
  else
    local owner = redis.call('GET', ip)
    if owner == ARGV[3] or (owner == false and redis.call('ZSCORE', KEYS[5], id)) then
      redis.call('ZADD', KEYS[1], ARGV[i + 4], id)
      unleased[#unleased + 1] = id
      dels[#dels + 1] = ip
      if action == 'Q' and redis.call('DECR', '@RETRY@' .. id) <= 0 then
        redis.call('DEL', '@RETRY@' .. id)
      end
      requeued = requeued + 1
    end
  end
end
if #unleased > 0 then redis.call('ZREM', KEYS[5], unpack(unleased)) end
if #dels > 0 then redis.call('DEL', unpack(dels)) end
if requeued > 0 and redis.call('LLEN', KEYS[4]) == 0 then redis.call('LPUSH', KEYS[4], '1') end
local dropped = 0
if failed > 0 then
  local over = redis.call('ZCARD', KEYS[2]) - failed_max
  if over > 0 then
    local oldest = redis.call('ZPOPMIN', KEYS[2], over)
    local ids = {}
    for j = 1, #oldest, 2 do ids[#ids + 1] = oldest[j] end
    redis.call('HDEL', KEYS[3], unpack(ids))
    dropped = #ids
  end
end
return dropped
""",
    allow_oom=True,
)

# KEYS: leases. ARGV: lease_ms, deadline_ms, worker_id, job ids...
# Returns the ids whose lease this worker no longer holds.
RENEW = _lua(
    """
local lost = {}
for i = 4, #ARGV do
  local ip = '@IP@' .. ARGV[i]
  if redis.call('GET', ip) == ARGV[3] then
    redis.call('PEXPIRE', ip, ARGV[1])
    redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[i])
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
""",
    allow_oom=True,
)

# KEYS: health, workers, queue, failed. ARGV: ttl_ms, worker_id, health_line, registry_entry, now_ms
# A worker's heartbeat: arq's health key, its registry entry, and the counts its metrics show.
# Allowed while Redis is full, so `--check` stays truthful while a full Redis drains.
HEARTBEAT = _lua(
    """
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return {redis.call('ZCOUNT', KEYS[3], '-inf', ARGV[5]), redis.call('ZCARD', KEYS[4])}
""",
    allow_oom=True,
)

# KEYS: failed, failed-jobs, queue, wake. ARGV: job_id, score, payload
# Puts a failed job back on its queue with a fresh try count. Returns 1, 0 (not in the failed
# set) or -1 (a job with this id is queued or running again already).
REDRIVE = _lua("""
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
if redis.call('EXISTS', '@JOB@' .. ARGV[1]) == 1 then return -1 end
redis.call('SET', '@JOB@' .. ARGV[1], ARGV[3])
redis.call('DEL', '@RETRY@' .. ARGV[1], '@RESULT@' .. ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('LLEN', KEYS[4]) == 0 then redis.call('LPUSH', KEYS[4], '1') end
return 1
""")


_SHAS: dict[str, str] = {}


def sha(script: str) -> str:
    """SHA1 of a script, as EVALSHA wants it (computed once)."""
    digest = _SHAS.get(script)
    if digest is None:
        import hashlib

        digest = _SHAS[script] = hashlib.sha1(script.encode()).hexdigest()
    return digest
