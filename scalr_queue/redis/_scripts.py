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

This module holds the job's own scripts (``ENQUEUE``, ``CLAIM``, ``FINISH``, ``RENEW``,
``HEARTBEAT``) and names the control scripts of :mod:`~scalr_queue.redis._control_scripts` too,
so ``_scripts.X`` reaches every script; the shared Lua blocks, prefix splicing and SHAs live in
:mod:`~scalr_queue.redis._lua`.
"""

from __future__ import annotations

from ._control_scripts import CANCEL, HOLD, PAGE, PAUSE, REDRIVE, RELEASE, REPLACE, RESUME
from ._lua import ALLOW_OOM, HOLD_MATCH, LIMITS, LIMITS_CLAIM, PRIORITY_BANDS, SPLICE, TRIES_KEPT, for_tag, sha
from ._lua import lua as _lua

__all__ = [
    "ALLOW_OOM",
    "CANCEL",
    "CLAIM",
    "ENQUEUE",
    "FINISH",
    "HEARTBEAT",
    "HOLD",
    "PAGE",
    "PAUSE",
    "REDRIVE",
    "RELEASE",
    "RENEW",
    "REPLACE",
    "RESUME",
    "TRIES_KEPT",
    "for_tag",
    "sha",
]

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

# KEYS: queue, wake, leases, paused[, holds, held[, limit keys (6)]][, stop (when now_ms is 0)].
# ARGV: now_ms, count, lease_ms, worker_id, recheck_ms[, hold_scan[, rules (JSON), sweep (0|1), limit_scan]]
# now_ms 0: the claim was pipelined behind the worker's wake BRPOP, so it runs when the wake lands (or
# the BRPOP times out), and the server's clock is the time. The last key is then the worker's stop list,
# which a stopping worker pushes twice to end its own BRPOP: present, it is deleted and nothing claimed.
# Returns {ids, payloads, tries, next_due|nil, more(0|1), dues[, paused]}: dues[i] is the score ids[i]
# had, the time it was due (enqueued, deferred to, retry backoff end, or a dead worker's lease end) in
# its priority band; next_due is a time, given when the claim came back short or saw nothing more due
# (more 0: a worker whose slots it filled can then wait for a wake or that time, not claim again).
# A claim that leaves the queue empty deletes a wake still in the list: nothing is left to wake for.
# Due jobs are taken highest priority first (``PRIORITY_BANDS``).
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
if #claimed < count or more == 0 then
  nxt = next_due(KEYS[1])
  -- an empty queue: a wake still in the list is stale (its jobs are taken) and would only send some
  -- worker a claim that comes back empty; every later enqueue, retry or release pushes a new one
  if not nxt and more == 0 then redis.call('DEL', KEYS[2]) end
  local l = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  if l[2] and (not nxt or tonumber(l[2]) < tonumber(nxt)) then nxt = l[2] end
end
return {claimed, payloads, tries, nxt, more, dues}
""",
    allow_oom=True,
)

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
-- KEYS[slot] is the finished index of the state the job ended in; one ZADD per index at the end
local function finished(slot, id)
  if finished_px > 0 then
    local members = indexed[slot]
    if not members then
      members = {}
      indexed[slot] = members
    end
    members[#members + 1] = now
    members[#members + 1] = id
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
for slot, members in pairs(indexed) do
  redis.call('ZADD', KEYS[slot], unpack(members))
  redis.call('ZREMRANGEBYRANK', KEYS[slot], 0, -finished_max - 1)
  redis.call('PEXPIRE', KEYS[slot], finished_px)
end
local dropped = 0
if failed > 0 then
  local over = redis.call('ZCARD', KEYS[2]) - failed_max
  if over > 0 then
    local oldest = redis.call('ZPOPMIN', KEYS[2], over)
    -- in chunks: unpack takes ~8,000 values at most, and a lowered failed_max can drop many more
    for j = 1, #oldest, 2000 do
      local ids = {}
      for k = j, math.min(j + 1998, #oldest), 2 do ids[#ids + 1] = oldest[k] end
      redis.call('HDEL', KEYS[3], unpack(ids))
    end
    dropped = #oldest / 2
  end
end
return dropped
""",
    allow_oom=True,
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
