"""The Lua scripts that make each step of a job's life one atomic round trip.

Vanilla arq claims a job with a WATCH/MULTI transaction per job, re-reads the queue by polling
and finishes a job with several commands. Here:

* ``ENQUEUE`` writes the payload, adds it to the queue and wakes one idle worker (1 round trip);
* ``CLAIM`` takes up to N ready jobs at once, from the queue into the leases set (jobs whose
  worker died first): lease marker set, payloads and try counts returned, and the next due time
  when nothing is ready;
* ``FINISH`` settles a batch of finished jobs (done, retry, requeue, fail) in one call;
* ``RENEW`` extends the leases of the jobs a live worker is still running;
* ``REPLACE`` is the enqueue of ``_replace``/``_debounce``: the job with that id gets the new
  arguments and due time, or, while it runs, a replacement that waits for it (``scalr:next:``);
* ``PAUSE``/``RESUME`` set and clear a queue's pause flag, which ``CLAIM`` reads;
* ``HOLD``/``RELEASE`` add and remove a hold on a task's jobs (optionally those whose keyword argument
  compares true with a value): ``CLAIM`` moves a matching due job into the held set instead of
  running it, and ``RELEASE`` puts the ones no hold matches any more back (or drops them);
* ``CANCEL`` removes a queued job (kept as ``cancelled``), or marks a running one and publishes
  its id to the workers, whose ``FINISH`` then records it as cancelled;
* limits (``task(..., max_concurrent=, concurrency_key=, rate_limit=)``): given the limit keys and the
  worker's table of limited tasks, ``CLAIM`` parks a job whose concurrency limit is full and defers one
  whose rate window is full (no try burnt, the jobs behind it still run), ``FINISH`` frees the slot and
  requeues the oldest job parked on it, and ``RENEW`` extends the slots with the leases (see ``LIMITS``).

A queue score is a due time inside its priority's band (:mod:`scalr_queue._priority`); the
scripts read and shift scores through ``PRIORITY_BANDS``, never as plain times.

A waiting replacement costs the plain path nothing: it sits in the queue under its job id, and
only the claim branches that never run without one look at it (a due id whose lease is held, a
claimed id whose payload is gone) plus the retry/requeue branch of ``FINISH``.

The key prefixes are spliced in from :mod:`scalr_queue.redis._keys`, the one place they live.
"""

from __future__ import annotations

import functools

from .._priority import BAND_MS
from ._keys import (
    FAILED_JOBS_PREFIX,
    FAILED_PREFIX,
    IN_PROGRESS_PREFIX,
    JOB_PREFIX,
    NEXT_PREFIX,
    PER_JOB_PREFIXES,
    RESULT_PREFIX,
    RETRY_PREFIX,
)

# tries one job's history keeps (the newest); max_tries may be far larger
TRIES_KEPT = 100

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
        .replace("@NEXT@", NEXT_PREFIX)
        .replace("@BANDW@", str(BAND_MS))
        .replace("@TRIESKEPT@", str(TRIES_KEPT))
    )


# Priority bands (scalr_queue._priority): score = due_ms + (5 - priority) * W, so a default-priority
# job's score is its due time and band 0 holds it; priority 9 is band -4, priority 0 band 5.
# ``due_page`` reads the due part of each band, highest priority first: one ZRANGE for the lowest
# score, the range of each band, and the highest score only once the default band did not fill the
# page (so a queue without priorities costs one or two ZRANGEs more per claim, no round trip).
PRIORITY_BANDS = """
local W = @BANDW@
local function band(score) return math.floor(tonumber(score) / W) end
-- the same band as score, due no earlier than t
local function not_before(score, t)
  local b = band(score)
  return b * W + math.max(tonumber(score) - b * W, t)
end
-- up to limit due jobs {id, score, ...} from the offset-th on, higher priority first, FIFO within one
local function due_page(key, now, offset, limit)
  local out = {}
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if not first[2] then return out end
  local b, last = band(first[2]), nil
  while true do
    local lo, skip = b * W, offset
    if offset > 0 then
      local n = redis.call('ZCOUNT', key, lo, lo + now)
      if offset >= n then offset, skip = offset - n, -1 else offset = 0 end
    end
    if skip >= 0 then
      local page = redis.call('ZRANGEBYSCORE', key, lo, lo + now, 'WITHSCORES', 'LIMIT', skip, limit)
      for i = 1, #page do out[#out + 1] = page[i] end
      limit = limit - #page / 2
      if limit <= 0 then break end
    end
    b = b + 1
    if b > 0 then
      last = last or band(redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2])
      if b > last then break end
    end
  end
  return out
end
-- the bands from the lowest score's to the highest's: first, last, the lowest score (nil when empty)
local function band_span(key)
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if not first[2] then return nil end
  return band(first[2]), band(redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2]), tonumber(first[2])
end
-- the earliest due time over all bands, or false when the queue is empty
local function next_due(key)
  local first, last, lowest = band_span(key)
  if not first then return false end
  if first == last then return lowest - first * W end  -- one band: its lowest score is the earliest
  local best = false
  for b = first, last do
    local lo = b * W
    local s = redis.call('ZRANGEBYSCORE', key, lo, '(' .. string.format('%d', lo + W), 'WITHSCORES', 'LIMIT', 0, 1)
    if s[2] and (not best or tonumber(s[2]) - lo < best) then best = tonumber(s[2]) - lo end
  end
  return best
end
"""


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

# Holds: a hash field per hold whose value is the rule as JSON, {"f": task, "k": keyword, "op": op,
# "v": value}, "k" absent for a hold on every job of the task. A job is held when its payload's task
# ("f") is the rule's and, given a keyword, its keyword argument ("k" in the payload) compares true
# with the value; a missing argument, or an ordering between a number and anything else, is no match.
HOLD_MATCH = """
local function hold_rules(key)
  local rules = {}
  for _, raw in ipairs(redis.call('HVALS', key)) do rules[#rules + 1] = cjson.decode(raw) end
  return rules
end
local function compare(a, op, b)
  if op == '==' then return a == b end
  if op == '!=' then return a ~= b end
  if type(a) ~= type(b) or (type(a) ~= 'number' and type(a) ~= 'string') then return false end
  if op == '<' then return a < b end
  if op == '<=' then return a <= b end
  if op == '>' then return a > b end
  return a >= b
end
local function held_by(rules, payload)
  if not payload then return false end
  local ok, job = pcall(cjson.decode, payload)
  if not ok or type(job) ~= 'table' then return false end
  for _, rule in ipairs(rules) do
    if job.f == rule.f then
      if rule.k == nil then return true end
      local kw = job.k
      if type(kw) == 'table' and kw[rule.k] ~= nil and compare(kw[rule.k], rule.op, rule.v) then return true end
    end
  end
  return false
end
"""

# Limits. A limit is named "c" (concurrency) or "r" (rate) plus a JSON array, ["task"] or, with a
# concurrency_key, ["task", value]; JSON arrays end where they end, so "<limit>|" never starts another
# limit's members. L is the list of limit keys (``_keys.limit_keys``): slots (job id -> lease end),
# slot limits (job id -> limit), slot counts (limit -> n), parked ("<limit>|<due>|<id>", by lex),
# parked ids (job id -> its parked member), starts ("<limit>|<start>|<id>", by lex).
# rules: task -> {n = max_concurrent, k = concurrency_key, r = starts per window, w = window ms}.
LIMITS = r"""
local function lim_pad(ms) return string.format('%015d', ms) end
-- a parked job's queue score carries its priority band (negative for priorities above 5): shifted
-- by five bands it is positive and 15 digits long, so the lex order of members is the score order
local LIM_SHIFT = 5 * @BANDW@
-- the n oldest jobs parked on this limit go back to the queue at their due time
local function lim_unpark(L, queue, limit, n)
  if n <= 0 then return 0 end
  local members = redis.call('ZRANGEBYLEX', L[4], '[' .. limit .. '|', '[' .. limit .. '|~', 'LIMIT', 0, n)
  for _, m in ipairs(members) do
    local id = string.sub(m, #limit + 18)
    redis.call('ZREM', L[4], m)
    redis.call('HDEL', L[5], id)
    redis.call('ZADD', queue, tonumber(string.sub(m, #limit + 2, #limit + 16)) - LIM_SHIFT, id)
  end
  return #members
end
-- the job's slot, if it holds one, frees and the oldest job parked on it is requeued; returns jobs requeued
local function lim_free(L, queue, id)
  if redis.call('ZREM', L[1], id) == 0 then return 0 end
  local limit = redis.call('HGET', L[2], id)
  if not limit then return 0 end
  redis.call('HDEL', L[2], id)
  if redis.call('HINCRBY', L[3], limit, -1) <= 0 then redis.call('HDEL', L[3], limit) end
  return lim_unpark(L, queue, limit, 1)
end
"""

# CLAIM's side of the limits: the admission of one job it is about to run, and the sweep.
LIMITS_CLAIM = r"""
-- run it (false: its slot and start are taken), or 'parked' (slot full: moved to the parked set,
-- the caller takes it off the queue) or 'deferred' (rate window full: requeued for when it opens)
local function lim_gate(L, queue, rules, id, due, now, lease)
  local payload = redis.call('GET', '@JOB@' .. id)
  if not payload then return false end
  -- the task's name from the payload's head ({"t":..,"f":"name",...}, as _codec writes it) without
  -- decoding it all; a payload of another shape is decoded
  local task = string.match(payload, '^{"t":[%w]*,"f":"([^"\\]*)"')
  local job = false
  if not task then
    local ok, decoded = pcall(cjson.decode, payload)
    if not ok or type(decoded) ~= 'table' or type(decoded.f) ~= 'string' then return false end
    job, task = decoded, decoded.f
  end
  local rule = rules[task]
  if not rule then return false end
  local slot, start
  if rule.n then
    if rule.k then
      if not job then
        local ok, decoded = pcall(cjson.decode, payload)
        if not ok or type(decoded) ~= 'table' then return false end
        job = decoded
      end
      local v = cjson.null
      if type(job.k) == 'table' and job.k[rule.k] ~= nil then v = job.k[rule.k] end
      slot = 'c' .. cjson.encode({task, v})
    else
      slot = 'c' .. cjson.encode({task})
    end
    if tonumber(redis.call('HGET', L[3], slot) or '0') >= rule.n then
      local old = redis.call('HGET', L[5], id)
      if old then redis.call('ZREM', L[4], old) end
      local m = slot .. '|' .. lim_pad(due + LIM_SHIFT) .. '|' .. id
      redis.call('ZADD', L[4], 0, m)
      redis.call('HSET', L[5], id, m)
      return 'parked'
    end
  end
  if rule.r then
    local name = 'r' .. cjson.encode({task})
    local lo, hi = '[' .. name .. '|', '[' .. name .. '|~'
    redis.call('ZREMRANGEBYLEX', L[6], lo, '(' .. name .. '|' .. lim_pad(now - rule.w + 1))
    if redis.call('ZLEXCOUNT', L[6], lo, hi) >= rule.r then
      local oldest = redis.call('ZRANGEBYLEX', L[6], lo, hi, 'LIMIT', 0, 1)[1]
      -- due when the window opens, in the job's own priority band
      local opens = tonumber(string.sub(oldest, #name + 2, #name + 16)) + rule.w
      local b = math.floor(due / @BANDW@)
      redis.call('ZADD', queue, b * @BANDW@ + opens, id)
      return 'deferred'
    end
    start = name .. '|' .. lim_pad(now) .. '|' .. id
  end
  if slot and redis.call('ZADD', L[1], now + lease, id) == 1 then
    redis.call('HSET', L[2], id, slot)
    redis.call('HINCRBY', L[3], slot, 1)
  end
  if start then
    redis.call('ZADD', L[6], 0, start)
    redis.call('PEXPIRE', L[6], 3600000)
  end
  return false
end
-- safety net, for a job requeued by lim_unpark that never took its slot (cancelled, dropped, expired
-- before a worker claimed it): requeue the parked jobs of up to cap limits that have free slots
local function lim_sweep(L, queue, rules, cap)
  local from = '-'
  local tail = '%]|' .. string.rep('%d', 15) .. '|'
  for _ = 1, cap do
    local first = redis.call('ZRANGEBYLEX', L[4], from, '+', 'LIMIT', 0, 1)[1]
    if not first then return end
    local e = string.find(first, tail)
    if not e then return end
    local limit = string.sub(first, 1, e)
    local ok, parts = pcall(cjson.decode, string.sub(limit, 2))
    local rule = ok and type(parts) == 'table' and rules[parts[1]]
    if rule and rule.n then
      lim_unpark(L, queue, limit, rule.n - tonumber(redis.call('HGET', L[3], limit) or '0'))
    end
    from = '(' .. limit .. '|~'
  end
end
"""

# KEYS: queue, wake, leases, paused[, holds, held[, limit keys (6)]][, stop (when now_ms is 0)].
# ARGV: now_ms, count, lease_ms, worker_id, recheck_ms[, hold_scan[, rules (JSON), sweep (0|1), limit_scan]]
# now_ms 0: the claim was pipelined behind the worker's wake BRPOP, so it runs when the wake lands (or
# the BRPOP times out), and the server's clock is the time. The last key is then the worker's stop list,
# which a stopping worker pushes twice to end its own BRPOP: present, it is deleted and nothing claimed.
# Returns {ids, payloads, tries, next_due|nil, more(0|1), dues[, paused]}: dues[i] is the score ids[i]
# had, the time it was due (enqueued, deferred to, retry backoff end, or a dead worker's lease end) in
# its priority band; next_due is a time. Due jobs are taken highest priority first (``PRIORITY_BANDS``).
# A paused queue hands out nothing and says so (running jobs finish; enqueues still land). A due id
# whose lease is held and that has a replacement waiting (NEXT) stays queued and is looked at again
# after recheck_ms; once claimed with its payload gone (its predecessor finished), the replacement
# becomes the job. Given the holds keys, a due job that matches a hold (see ``HOLD_MATCH``) is moved
# from the queue into the held set, keeping its due time, before it is leased: it burns no try, and
# the claim goes on with the jobs behind it. At most hold_scan held jobs are moved per call (the rest
# wait for the next one, which ``more`` asks for). One EXISTS per call when nothing is held.
# Given the limit keys and rules (a worker with limited tasks only), each job it is about to run
# passes ``lim_gate`` once its lease marker is set: over its limit, the marker goes, the job is parked
# or deferred (no try burnt) and the claim goes on with the jobs behind it, looking at up to
# limit_scan more due jobs than it needs. Expired slots (a dead worker's) are freed first.
CLAIM = _lua(
    HOLD_MATCH
    + PRIORITY_BANDS
    + LIMITS
    + LIMITS_CLAIM
    + """
local nkeys = #KEYS
local now = tonumber(ARGV[1])
if now == 0 then
  -- sent behind the worker's wake BRPOP: the last key is its stop list, and the time is the server's
  local stop = KEYS[nkeys]
  nkeys = nkeys - 1
  if redis.call('EXISTS', stop) == 1 then
    redis.call('DEL', stop)
    return {{}, {}, {}, false, 0, {}}
  end
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
if redis.call('EXISTS', KEYS[4]) == 1 then return {{}, {}, {}, false, 0, {}, 1} end
local count = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local claimed, fromq, dues = {}, {}, {}
local more = 0
-- limits: free the slots of dead workers' jobs (their oldest parked jobs go back to the queue)
local L, lim_rules, diverted = false, false, 0
if nkeys > 6 then
  L = {KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11], KEYS[12]}
  lim_rules = cjson.decode(ARGV[7])
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', L[1], '-inf', now, 'LIMIT', 0, 100)) do lim_free(L, KEYS[1], id) end
  if ARGV[8] == '1' then lim_sweep(L, KEYS[1], lim_rules, 20) end
end
-- 1. jobs whose worker died: their lease ran out. They were claimed first, so they go first.
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'WITHSCORES', 'LIMIT', 0, count)
for e = 1, #expired, 2 do
  local id = expired[e]
  local ip = '@IP@' .. id
  if redis.call('SET', ip, ARGV[4], 'NX', 'PX', lease) then
    -- limits: a dead worker's job takes a slot again, or waits for one off the leases set
    local gated = lim_rules and lim_gate(L, KEYS[1], lim_rules, id, tonumber(expired[e + 1]), now, lease)
    if gated then
      redis.call('DEL', ip)
      redis.call('ZREM', KEYS[3], id)
      diverted = diverted + 1
    else
      claimed[#claimed + 1] = id
      dues[#claimed] = expired[e + 1]
    end
  else
    -- a live worker holds it and its renewal is on the way: follow the lease, never spin on it
    local ttl = redis.call('PTTL', ip)
    if ttl < 0 then ttl = lease end
    redis.call('ZADD', KEYS[3], 'XX', now + ttl, id)
  end
end
-- 2. due jobs from the queue; one more than needed tells whether to wake another worker
if #claimed < count then
  local want = count - #claimed + 1
  if lim_rules then want = want + tonumber(ARGV[9]) end  -- limits: room to look past jobs over their limit
  local ids
  local rules = nkeys > 5 and redis.call('EXISTS', KEYS[5]) == 1 and hold_rules(KEYS[5])
  if rules then
    -- page through the due jobs, moving the held ones aside, until enough others are found
    ids = {}
    local offset, moved, scan = 0, 0, tonumber(ARGV[6])
    while #ids < 2 * want do
      local page = due_page(KEYS[1], now, offset, want)
      if #page == 0 then break end
      for p = 1, #page, 2 do
        if #ids >= 2 * want then break end
        if held_by(rules, redis.call('GET', '@JOB@' .. page[p])) then
          if moved >= scan then more = 1 break end
          redis.call('ZREM', KEYS[1], page[p])
          redis.call('ZADD', KEYS[6], page[p + 1], page[p])
          moved = moved + 1
        else
          ids[#ids + 1] = page[p]
          ids[#ids + 1] = page[p + 1]
          offset = offset + 1
        end
      end
      if more == 1 then break end
    end
  else
    ids = due_page(KEYS[1], now, 0, want)
  end
  for q = 1, #ids, 2 do
    local id = ids[q]
    if #claimed >= count then more = 1 break end
    if redis.call('SET', '@IP@' .. id, ARGV[4], 'NX', 'PX', lease) then
      -- limits: over its limit, the job is parked (off the queue) or deferred (queued for later)
      local gated = lim_rules and lim_gate(L, KEYS[1], lim_rules, id, tonumber(ids[q + 1]), now, lease)
      if gated then
        redis.call('DEL', '@IP@' .. id)
        if gated == 'parked' then fromq[#fromq + 1] = id end
        diverted = diverted + 1
      else
        fromq[#fromq + 1] = id
        claimed[#claimed + 1] = id
        dues[#claimed] = ids[q + 1]
      end
    else
      local ttl = redis.call('PTTL', '@IP@' .. id)
      if ttl < 0 then ttl = lease end
      if redis.call('EXISTS', '@NEXT@' .. id) == 1 then
        -- a replacement waiting for the running job: it stays queued, never runs beside it
        redis.call('ZADD', KEYS[1], not_before(ids[q + 1], now + math.min(ttl, tonumber(ARGV[5]))), id)
      else
        fromq[#fromq + 1] = id
        redis.call('ZADD', KEYS[3], now + ttl, id)  -- leased already: it belongs with the leases
      end
    end
  end
  -- limits: every job looked at was over its limit and there may be more behind them
  if diverted > 0 and #claimed < count and #ids >= 2 * want then more = 1 end
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
  local added = redis.call('ZADD', KEYS[3], unpack(zargs))
  payloads = redis.call('MGET', unpack(jkeys))
  for i, id in ipairs(claimed) do
    if not payloads[i] then
      -- its predecessor finished and took the payload with it: a waiting replacement takes its place
      local waiting = redis.call('GET', '@NEXT@' .. id)
      if waiting then
        local ttl = redis.call('PTTL', '@NEXT@' .. id)
        if ttl > 0 then redis.call('SET', jkeys[i], waiting, 'PX', ttl) else redis.call('SET', jkeys[i], waiting) end
        redis.call('DEL', '@NEXT@' .. id, '@RESULT@' .. id)
        redis.call('ZREM', KEYS[1], id)
        payloads[i] = waiting
      end
    end
    tries[i] = redis.call('INCR', '@RETRY@' .. id)
  end
  if added < #claimed then
    -- some had a lease entry already (a dead worker's run, taken over): a replacement waiting for
    -- that run stays queued behind this one, even when its queue entry was just taken with it
    for i, id in ipairs(claimed) do
      if redis.call('EXISTS', '@NEXT@' .. id) == 1 then
        redis.call('ZADD', KEYS[1], 'NX', not_before(dues[i], now + tonumber(ARGV[5])), id)
      end
    end
  end
end
if more == 1 and redis.call('LLEN', KEYS[2]) == 0 then redis.call('LPUSH', KEYS[2], '1') end
local nxt = false
if #claimed < count then
  nxt = next_due(KEYS[1])
  local l = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  if l[2] and (not nxt or tonumber(l[2]) < tonumber(nxt)) then nxt = l[2] end
end
return {claimed, payloads, tries, nxt, more, dues}
""",
    allow_oom=True,
)

# A cancelled job's result: its payload with the cancel fields spliced in before the closing brace
# (``suffix`` starts with a comma; see ``_cancel.cancel_suffix``), so no JSON is re-encoded in Lua.
SPLICE = """
local function splice(payload, suffix)
  if payload and #payload > 2 and string.sub(payload, 1, 1) == '{' and string.sub(payload, -1) == '}' then
    return string.sub(payload, 1, -2) .. suffix
  end
  return '{"a":[],"k":{}' .. suffix
end
"""

# KEYS: queue, failed, failed-jobs, wake, leases, cancels, finished-complete, finished-failed,
# finished-cancelled, then the tries key of each op that carries an attempt, in op order[, then the
# limit keys (6)].
# ARGV: now_ms, failed_max, worker_id, finished_max, finished_px, live_px, then groups of 6:
# action, job_id, data1, data2, num, attempt
#   D (done)    data1 = result ('' = keep none), num = result px
#   R (retry)   num = new score (in the job's priority band); counts as a try
#   Q (requeue) num = new score; does not count as a try (shutdown, unknown task on this worker)
#   F (failed)  data1 = failure record, data2 = result ('' = none), num = result px
#   C (cancelled) data1 = result suffix, num = result px, both used when no cancel mark is found
#   attempt: the try's JSON record, pushed on the job's tries list ('' = none), which expires with
#   the result (result px; 0 deletes it) or, for a job that runs again, live_px after its new due time
# R, Q and F hand the job's place to a waiting replacement (NEXT), if there is one; D and C leave it to CLAIM.
# R, Q and C only act while this worker still holds the lease, or while its expired lease is still in
# the leases set (nobody took the job over): after a takeover the job, even finished and gone,
# belongs to the other worker. An R or Q of a job with a cancel mark ends it cancelled instead (a
# cancel that landed while it was failing is not lost). A job that ends complete (result kept),
# failed or cancelled goes into that state's finished index (scored by now), which keeps the
# newest finished_max entries and expires finished_px after the last finish (finished_px 0: no
# index; readers skip entries older than their keep_result). Returns failed-set entries dropped.
# Given the limit keys (a worker with limited tasks only), every job that leaves the leases set
# frees its concurrency slot, and the oldest job parked on that limit goes back to the queue.
FINISH = _lua(
    SPLICE
    + PRIORITY_BANDS
    + LIMITS
    + """
local now = tonumber(ARGV[1])
local failed_max = tonumber(ARGV[2])
local finished_max, finished_px, live_px = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local indexed = {}
-- the try's record on the job's history (its tries key: the op's own, from KEYS[10] on), expiring in px ms
local histories = 9
local attempts = 0
for i = 12, #ARGV, 6 do
  if ARGV[i] ~= '' then attempts = attempts + 1 end
end
-- limits: their six keys follow the tries keys, given by a worker with limited tasks only
local L = false
if #KEYS == 9 + attempts + 6 then
  local l0 = 9 + attempts
  L = {KEYS[l0 + 1], KEYS[l0 + 2], KEYS[l0 + 3], KEYS[l0 + 4], KEYS[l0 + 5], KEYS[l0 + 6]}
end
local key = false
local function remember(attempt, px)
  if attempt == '' then return end
  if tonumber(px) <= 0 then
    redis.call('DEL', key)
    return
  end
  if redis.call('RPUSH', key, attempt) > @TRIESKEPT@ then redis.call('LTRIM', key, -@TRIESKEPT@, -1) end
  redis.call('PEXPIRE', key, px)
end
-- KEYS[slot] is the finished index of the state the job ended in
local function finished(slot, id)
  if finished_px > 0 then
    redis.call('ZADD', KEYS[slot], now, id)
    indexed[slot] = true
  end
end
local unleased, dels = {}, {}
local requeued = 0
local failed = 0
-- a replacement waiting for this run takes the job's place (its own time, fresh tries): its due score, or false
local function take_over(id)
  local nk = '@NEXT@' .. id
  local waiting = redis.call('GET', nk)
  if not waiting then return false end
  local ttl = redis.call('PTTL', nk)
  local jk = '@JOB@' .. id
  if ttl > 0 then redis.call('SET', jk, waiting, 'PX', ttl) else redis.call('SET', jk, waiting) end
  redis.call('DEL', nk, '@RETRY@' .. id)
  return not_before(redis.call('ZSCORE', KEYS[1], id) or now, now)
end
-- one EXISTS per call, so jobs nobody cancels cost no command each
local marks = redis.call('EXISTS', KEYS[6]) == 1
local unmarked = {}
for i = 7, #ARGV, 6 do
  local action, id, attempt = ARGV[i], ARGV[i + 1], ARGV[i + 5]
  if attempt ~= '' then
    histories = histories + 1
    key = KEYS[histories]
  end
  local ip = '@IP@' .. id
  local mark = false
  if marks then
    mark = redis.call('HGET', KEYS[6], id)
    if mark then unmarked[#unmarked + 1] = id end
  end
  local cancelled = action == 'C' or (mark and (action == 'R' or action == 'Q'))
  local superseded = not cancelled and action == 'F' and take_over(id)
  if cancelled then
    local owner = redis.call('GET', ip)
    if owner == ARGV[3] or (owner == false and redis.call('ZSCORE', KEYS[5], id)) then
      local px, suffix = ARGV[i + 4], ARGV[i + 2]
      if mark then
        local nl = string.find(mark, '\\n', 1, true)
        px, suffix = string.sub(mark, 1, nl - 1), string.sub(mark, nl + 1)
      end
      if px ~= '0' then
        local tries = redis.call('GET', '@RETRY@' .. id)
        if tries then suffix = ',"tries":' .. tries .. suffix end
        redis.call('SET', '@RESULT@' .. id, splice(redis.call('GET', '@JOB@' .. id), suffix), 'PX', px)
        finished(9, id)
      end
      remember(attempt, px)
      unleased[#unleased + 1] = id
      dels[#dels + 1] = '@JOB@' .. id
      dels[#dels + 1] = ip
      dels[#dels + 1] = '@RETRY@' .. id
    end
  elseif superseded then
    -- failed for good, but a replacement was waiting: it runs instead; the failure is not recorded
    redis.call('ZADD', KEYS[1], superseded, id)
    remember(attempt, superseded - now + live_px)
    unleased[#unleased + 1] = id
    dels[#dels + 1] = ip
    requeued = requeued + 1
  elseif action == 'D' or action == 'F' then
    if action == 'F' then
      redis.call('ZADD', KEYS[2], now, id)
      redis.call('HSET', KEYS[3], id, ARGV[i + 2])
      failed = failed + 1
      if ARGV[i + 3] ~= '' then redis.call('SET', '@RESULT@' .. id, ARGV[i + 3], 'PX', ARGV[i + 4]) end
      finished(8, id)
    elseif ARGV[i + 2] ~= '' then
      redis.call('SET', '@RESULT@' .. id, ARGV[i + 2], 'PX', ARGV[i + 4])
      finished(7, id)
    end
    remember(attempt, ARGV[i + 4])
    unleased[#unleased + 1] = id
    dels[#dels + 1] = '@JOB@' .. id
    dels[#dels + 1] = ip
    dels[#dels + 1] = '@RETRY@' .. id
  else
    local owner = redis.call('GET', ip)
    if owner == ARGV[3] or (owner == false and redis.call('ZSCORE', KEYS[5], id)) then
      local waiting = take_over(id)
      local due = waiting or tonumber(ARGV[i + 4])
      redis.call('ZADD', KEYS[1], due, id)
      remember(attempt, math.max(due - now, 0) + live_px)
      unleased[#unleased + 1] = id
      dels[#dels + 1] = ip
      if action == 'Q' and not waiting and redis.call('DECR', '@RETRY@' .. id) <= 0 then
        redis.call('DEL', '@RETRY@' .. id)
      end
      requeued = requeued + 1
    end
  end
end
if #unleased > 0 then redis.call('ZREM', KEYS[5], unpack(unleased)) end
if #dels > 0 then redis.call('DEL', unpack(dels)) end
-- limits: one EXISTS per call when no slot is held
if L and #unleased > 0 and redis.call('EXISTS', L[1]) == 1 then
  for _, id in ipairs(unleased) do requeued = requeued + lim_free(L, KEYS[1], id) end
end
if #unmarked > 0 then redis.call('HDEL', KEYS[6], unpack(unmarked)) end
if requeued > 0 and redis.call('LLEN', KEYS[4]) == 0 then redis.call('LPUSH', KEYS[4], '1') end
for slot in pairs(indexed) do
  redis.call('ZREMRANGEBYRANK', KEYS[slot], 0, -finished_max - 1)
  redis.call('PEXPIRE', KEYS[slot], finished_px)
end
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

# KEYS: leases[, cancels[, slots]]. ARGV: lease_ms, deadline_ms, worker_id, job ids...
# Given the slots key (a worker with limited tasks), the slots of its jobs are extended with their leases.
# Returns the ids whose lease this worker no longer holds; given the cancels key, {lost, marked}:
# marked are held jobs with a cancel mark, a safety net for a publish the worker missed (a job it
# took over from a dead worker, say). One EXISTS per call when nothing is marked.
RENEW = _lua(
    """
local lost, marked = {}, {}
local marks = #KEYS > 1 and redis.call('EXISTS', KEYS[2]) == 1
for i = 4, #ARGV do
  local ip = '@IP@' .. ARGV[i]
  if redis.call('GET', ip) == ARGV[3] then
    redis.call('PEXPIRE', ip, ARGV[1])
    redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[i])
    if #KEYS > 2 then redis.call('ZADD', KEYS[3], 'XX', ARGV[2], ARGV[i]) end
    if marks and redis.call('HEXISTS', KEYS[2], ARGV[i]) == 1 then marked[#marked + 1] = ARGV[i] end
  else
    lost[#lost + 1] = ARGV[i]
  end
end
if #KEYS > 1 then return {lost, marked} end
return lost
""",
    allow_oom=True,
)

# KEYS: health, workers. ARGV: ttl_ms, worker_id, health_line, registry_entry
# A worker's heartbeat: arq's health key and its registry entry (queue depths come from the one
# reporter per queue, not from every worker's heartbeat).
# Allowed while Redis is full, so `--check` stays truthful while a full Redis drains.
HEARTBEAT = _lua(
    """
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
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


_SHAS: dict[str, str] = {}


@functools.lru_cache(maxsize=256)
def for_tag(script: str, tag: str) -> str:
    """The script with its per-job key prefixes tagged for one queue (Redis Cluster).

    CLAIM, FINISH and the other scripts build per-job keys from an id they read (``'arq:job:' .. id``);
    on a cluster those names carry the queue's tag (``arq:job:{q}<id>``), the same tag as the KEYS the
    call passes, so every key the script touches is in one slot.
    """
    for prefix in PER_JOB_PREFIXES:
        script = script.replace(f"'{prefix}'", f"'{prefix}{tag}'")
    return script


def sha(script: str) -> str:
    """SHA1 of a script, as EVALSHA wants it (computed once)."""
    digest = _SHAS.get(script)
    if digest is None:
        import hashlib

        digest = _SHAS[script] = hashlib.sha1(script.encode()).hexdigest()
    return digest
