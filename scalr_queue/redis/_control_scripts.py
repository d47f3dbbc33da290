"""The Lua scripts of control and reads: replace, pause, hold, cancel, redrive, paging.

Each is one atomic round trip from the producer, the CLI or the dashboard; the worker's side of
the same features lives in ``CLAIM`` and ``FINISH`` (:mod:`scalr_queue.redis._scripts`, the index
of every script).
"""

from __future__ import annotations

from ._lua import HOLD_MATCH, PRIORITY_BANDS, SPLICE
from ._lua import lua as _lua

# KEYS: job, queue, wake, result, in_progress, next, retry, leases, failed, failed-jobs, parked, parked-ids.
# ARGV: job_id, score, payload, px
# The enqueue of _replace and _debounce. While the job runs, the payload waits in NEXT and the id is
# queued at the new time; CLAIM holds it back until the running one ends. Otherwise the payload and
# due time replace the job's, and a kept result, a try count, a dead worker's lease or a failed-set
# entry of an earlier run is dropped: this is a new run (as ``failed retry`` would make it). A job
# parked for a concurrency slot is queued instead, at the new time, and waits for a slot again if need be.
# Returns 1 (new job), 2 (replaced a waiting one), 3 (queued to run after the running one).
REPLACE = _lua("""
local function put(key)
  if ARGV[4] ~= '0' then redis.call('SET', key, ARGV[3], 'PX', ARGV[4]) else redis.call('SET', key, ARGV[3]) end
end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
if redis.call('EXISTS', KEYS[5]) == 1 then
  put(KEYS[6])
  return 3
end
local existed = redis.call('EXISTS', KEYS[1], KEYS[6])
put(KEYS[1])
redis.call('DEL', KEYS[4], KEYS[6], KEYS[7])
redis.call('ZREM', KEYS[8], ARGV[1])
redis.call('ZREM', KEYS[9], ARGV[1])
redis.call('HDEL', KEYS[10], ARGV[1])
local parked = redis.call('HGET', KEYS[12], ARGV[1])
if parked then
  redis.call('ZREM', KEYS[11], parked)
  redis.call('HDEL', KEYS[12], ARGV[1])
end
if redis.call('LLEN', KEYS[3]) == 0 then redis.call('LPUSH', KEYS[3], '1') end
if existed > 0 then return 2 end
return 1
""")

# KEYS: paused. ARGV: record (JSON). Returns 1 if it paused the queue, 0 if it was paused already.
PAUSE = _lua("""
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 1 end
return 0
""")

# KEYS: paused, wake. Returns 1 if it resumed the queue, 0 if it was not paused. Wakes an idle
# worker at once; its claim wakes the next one while there is more to take.
RESUME = _lua("""
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
if redis.call('LLEN', KEYS[2]) == 0 then redis.call('LPUSH', KEYS[2], '1') end
return 1
""")

# KEYS: holds. ARGV: field, rule (JSON, see HOLD_MATCH). Returns 1 if the hold is new, 0 if it existed.
HOLD = _lua("""
return redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
""")

# KEYS: holds, held, queue, wake. ARGV: now_ms, drop (0|1), task, field ('' = every hold on the task)
# Removes the holds, then sends every held job no remaining hold matches back to the queue at its
# due time (or now, if that has passed) and wakes an idle worker; with drop, deletes those jobs
# instead. A held id whose payload is gone (expired, say) leaves the held set.
# Returns {holds removed, jobs released, dropped ids, jobs still held}.
RELEASE = _lua(
    HOLD_MATCH
    + PRIORITY_BANDS
    + """
local now = tonumber(ARGV[1])
local removed = 0
if ARGV[4] ~= '' then
  removed = redis.call('HDEL', KEYS[1], ARGV[4])
else
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    if cjson.decode(all[i + 1]).f == ARGV[3] then removed = removed + redis.call('HDEL', KEYS[1], all[i]) end
  end
end
if removed == 0 then return {0, 0, {}, redis.call('ZCARD', KEYS[2])} end
local rules = redis.call('EXISTS', KEYS[1]) == 1 and hold_rules(KEYS[1])
local held = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
local released, dropped = 0, {}
for i = 1, #held, 2 do
  local id = held[i]
  local payload = redis.call('GET', '@JOB@' .. id)
  if not payload then
    redis.call('ZREM', KEYS[2], id)
  elseif not (rules and held_by(rules, payload)) then
    redis.call('ZREM', KEYS[2], id)
    if ARGV[2] == '1' then
      redis.call('DEL', '@JOB@' .. id, '@RETRY@' .. id)
      dropped[#dropped + 1] = id
    else
      redis.call('ZADD', KEYS[3], not_before(held[i + 1], now), id)
      released = released + 1
    end
  end
end
if released > 0 and redis.call('LLEN', KEYS[4]) == 0 then redis.call('LPUSH', KEYS[4], '1') end
return {removed, released, dropped, redis.call('ZCARD', KEYS[2])}
"""
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

# KEYS: job, queue, in-progress, result, retry, leases, cancels, failed-jobs, held, parked, parked-ids,
# finished-cancelled, tries. ARGV: job_id, result px, result suffix, channel, mark_ttl_ms, now_ms, finished_max
# Queued, scheduled, held, parked, or leased by a dead worker (lease marker gone): removed, result kept
# as cancelled, listed in the finished index (capped at finished_max) and its tries kept as long.
# Running: marked, and its id published to the queue's workers (the one holding it cancels the
# task; FINISH records it). Returns 'cancelled', 'cancelling', 'finished' (a result
# or a failed-set entry exists: nothing changed) or 'not_found'.
CANCEL = _lua(
    SPLICE
    + """
local id = ARGV[1]
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HSET', KEYS[7], id, ARGV[2] .. '\\n' .. ARGV[3])
  redis.call('PEXPIRE', KEYS[7], ARGV[5])
  -- pcall: a Redis user without the channel still marks the job; its workers then poll the marks
  redis.pcall('PUBLISH', ARGV[4], id)
  return 'cancelling'
end
local parked = redis.call('HGET', KEYS[11], id)
if parked then
  redis.call('ZREM', KEYS[10], parked)
  redis.call('HDEL', KEYS[11], id)
end
local queued = parked or redis.call('ZSCORE', KEYS[2], id)
if queued or redis.call('ZSCORE', KEYS[6], id) or redis.call('ZSCORE', KEYS[9], id) then
  local payload = redis.call('GET', KEYS[1])
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[6], id)
  redis.call('ZREM', KEYS[9], id)
  redis.call('DEL', KEYS[1], KEYS[5])
  if ARGV[2] ~= '0' then
    redis.call('SET', KEYS[4], splice(payload, ARGV[3]), 'PX', ARGV[2])
    redis.call('ZADD', KEYS[12], ARGV[6], id)
    local over = redis.call('ZCARD', KEYS[12]) - tonumber(ARGV[7])
    if over > 0 then redis.call('ZREMRANGEBYRANK', KEYS[12], 0, over - 1) end
    if redis.call('PTTL', KEYS[12]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[12], ARGV[2]) end
    redis.call('PEXPIRE', KEYS[13], ARGV[2])
  else
    redis.call('DEL', KEYS[13])
  end
  return 'cancelled'
end
if redis.call('EXISTS', KEYS[4]) == 1 or redis.call('HEXISTS', KEYS[8], id) == 1 then return 'finished' end
return 'not_found'
"""
)

# KEYS: zset. ARGV: min_score, max_score, limit, reverse (0|1), cursor_id ('' = first page), cursor_score
# One page of a sorted set between two scores, after the cursor (the last row of the previous page):
# by rank from the cursor's rank when it is still in the set (equal scores are never skipped), else
# by score after the cursor's score. O(log N + limit) however large the set: the read model's paging.
# Returns {id, score, id, score, ...}.
PAGE = _lua("""
local key, lo, hi, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local rev, cid = ARGV[4] == '1', ARGV[5]
if cid == '' then
  if rev then return redis.call('ZREVRANGEBYSCORE', key, hi, lo, 'WITHSCORES', 'LIMIT', 0, limit) end
  return redis.call('ZRANGEBYSCORE', key, lo, hi, 'WITHSCORES', 'LIMIT', 0, limit)
end
local rank
if rev then rank = redis.call('ZREVRANK', key, cid) else rank = redis.call('ZRANK', key, cid) end
if rank then
  local rows
  if rev then
    rows = redis.call('ZREVRANGE', key, rank + 1, rank + limit, 'WITHSCORES')
  else
    rows = redis.call('ZRANGE', key, rank + 1, rank + limit, 'WITHSCORES')
  end
  local out = {}
  for i = 1, #rows, 2 do
    local score = tonumber(rows[i + 1])
    if score < lo or score > hi then break end
    out[#out + 1] = rows[i]
    out[#out + 1] = rows[i + 1]
  end
  return out
end
-- the cursor's row is gone (claimed, retried, expired): carry on after its score
local at = tonumber(ARGV[6])
if rev then
  local top = at > hi and ARGV[2] or '(' .. ARGV[6]
  return redis.call('ZREVRANGEBYSCORE', key, top, lo, 'WITHSCORES', 'LIMIT', 0, limit)
end
local bottom = at < lo and ARGV[1] or '(' .. ARGV[6]
return redis.call('ZRANGEBYSCORE', key, bottom, hi, 'WITHSCORES', 'LIMIT', 0, limit)
""")
