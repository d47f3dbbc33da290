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
  its id to the workers, whose ``FINISH`` then records it as cancelled.

A waiting replacement costs the plain path nothing: it sits in the queue under its job id, and
only the claim branches that never run without one look at it (a due id whose lease is held, a
claimed id whose payload is gone) plus the retry/requeue branch of ``FINISH``.

The key prefixes are spliced in from :mod:`scalr_queue.redis._keys`, the one place they live.
"""

from __future__ import annotations

from ._keys import (
    FAILED_JOBS_PREFIX,
    FAILED_PREFIX,
    IN_PROGRESS_PREFIX,
    JOB_PREFIX,
    NEXT_PREFIX,
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
        .replace("@TRIESKEPT@", str(TRIES_KEPT))
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

# KEYS: queue, wake, leases, paused[, holds, held]. ARGV: now_ms, count, lease_ms, worker_id, recheck_ms[, hold_scan]
# Returns {ids, payloads, tries, next_score|nil, more(0|1), dues[, paused]}: dues[i] is the score ids[i]
# had, the time it was due (enqueued, deferred to, retry backoff end, or a dead worker's lease end).
# A paused queue hands out nothing and says so (running jobs finish; enqueues still land). A due id
# whose lease is held and that has a replacement waiting (NEXT) stays queued and is looked at again
# after recheck_ms; once claimed with its payload gone (its predecessor finished), the replacement
# becomes the job. Given the holds keys, a due job that matches a hold (see ``HOLD_MATCH``) is moved
# from the queue into the held set, keeping its due time, before it is leased: it burns no try, and
# the claim goes on with the jobs behind it. At most hold_scan held jobs are moved per call (the rest
# wait for the next one, which ``more`` asks for). One EXISTS per call when nothing is held.
CLAIM = _lua(
    HOLD_MATCH
    + """
if redis.call('EXISTS', KEYS[4]) == 1 then return {{}, {}, {}, false, 0, {}, 1} end
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
  local want = count - #claimed + 1
  local ids
  local rules = #KEYS > 5 and redis.call('EXISTS', KEYS[5]) == 1 and hold_rules(KEYS[5])
  if rules then
    -- page through the due jobs, moving the held ones aside, until enough others are found
    ids = {}
    local offset, moved, scan = 0, 0, tonumber(ARGV[6])
    while #ids < 2 * want do
      local page = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', offset, want)
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
    ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, want)
  end
  for q = 1, #ids, 2 do
    local id = ids[q]
    if #claimed >= count then more = 1 break end
    if redis.call('SET', '@IP@' .. id, ARGV[4], 'NX', 'PX', lease) then
      fromq[#fromq + 1] = id
      claimed[#claimed + 1] = id
      dues[#claimed] = ids[q + 1]
    else
      local ttl = redis.call('PTTL', '@IP@' .. id)
      if ttl < 0 then ttl = lease end
      if redis.call('EXISTS', '@NEXT@' .. id) == 1 then
        -- a replacement waiting for the running job: it stays queued, never runs beside it
        redis.call('ZADD', KEYS[1], now + math.min(ttl, tonumber(ARGV[5])), id)
      else
        fromq[#fromq + 1] = id
        redis.call('ZADD', KEYS[3], now + ttl, id)  -- leased already: it belongs with the leases
      end
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
    for _, id in ipairs(claimed) do
      if redis.call('EXISTS', '@NEXT@' .. id) == 1 then
        redis.call('ZADD', KEYS[1], 'NX', now + tonumber(ARGV[5]), id)
      end
    end
  end
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
# finished-cancelled, then the tries key of each op that carries an attempt, in op order.
# ARGV: now_ms, failed_max, worker_id, finished_max, finished_px, live_px, then groups of 6:
# action, job_id, data1, data2, num, attempt
#   D (done)    data1 = result ('' = keep none), num = result px
#   R (retry)   num = new score; counts as a try
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
FINISH = _lua(
    SPLICE
    + """
local now = tonumber(ARGV[1])
local failed_max = tonumber(ARGV[2])
local finished_max, finished_px, live_px = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local indexed = {}
-- the try's record on the job's history (its tries key: the op's own, from KEYS[10] on), expiring in px ms
local histories = 9
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
  return math.max(tonumber(redis.call('ZSCORE', KEYS[1], id) or now), now)
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

# KEYS: job, queue, wake, result, in_progress, next, retry, leases, failed, failed-jobs.
# ARGV: job_id, score, payload, px
# The enqueue of _replace and _debounce. While the job runs, the payload waits in NEXT and the id is
# queued at the new time; CLAIM holds it back until the running one ends. Otherwise the payload and
# due time replace the job's, and a kept result, a try count, a dead worker's lease or a failed-set
# entry of an earlier run is dropped: this is a new run (as ``failed retry`` would make it).
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
      redis.call('ZADD', KEYS[3], math.max(tonumber(held[i + 1]), now), id)
      released = released + 1
    end
  end
end
if released > 0 and redis.call('LLEN', KEYS[4]) == 0 then redis.call('LPUSH', KEYS[4], '1') end
return {removed, released, dropped, redis.call('ZCARD', KEYS[2])}
"""
)

# KEYS: leases[, cancels]. ARGV: lease_ms, deadline_ms, worker_id, job ids...
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

# KEYS: job, queue, in-progress, result, retry, leases, cancels, failed-jobs, held, finished-cancelled, tries.
# ARGV: job_id, result px, result suffix, channel, mark_ttl_ms, now_ms, finished_max
# Queued, scheduled, held, or leased by a dead worker (lease marker gone): removed, result kept as
# cancelled, listed in the finished index (capped at finished_max) and its tries kept as long.
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
if redis.call('ZSCORE', KEYS[2], id) or redis.call('ZSCORE', KEYS[6], id) or redis.call('ZSCORE', KEYS[9], id) then
  local payload = redis.call('GET', KEYS[1])
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[6], id)
  redis.call('ZREM', KEYS[9], id)
  redis.call('DEL', KEYS[1], KEYS[5])
  if ARGV[2] ~= '0' then
    redis.call('SET', KEYS[4], splice(payload, ARGV[3]), 'PX', ARGV[2])
    redis.call('ZADD', KEYS[10], ARGV[6], id)
    local over = redis.call('ZCARD', KEYS[10]) - tonumber(ARGV[7])
    if over > 0 then redis.call('ZREMRANGEBYRANK', KEYS[10], 0, over - 1) end
    if redis.call('PTTL', KEYS[10]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[10], ARGV[2]) end
    redis.call('PEXPIRE', KEYS[11], ARGV[2])
  else
    redis.call('DEL', KEYS[11])
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


def sha(script: str) -> str:
    """SHA1 of a script, as EVALSHA wants it (computed once)."""
    digest = _SHAS.get(script)
    if digest is None:
        import hashlib

        digest = _SHAS[script] = hashlib.sha1(script.encode()).hexdigest()
    return digest
