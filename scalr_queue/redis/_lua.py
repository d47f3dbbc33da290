"""The building blocks of every Lua script: prefix splicing, shared Lua functions, SHAs, cluster tags.

Scripts are plain strings with placeholders (``@JOB@``, ``@BANDW@``...) that :func:`lua` replaces
with the key prefixes of :mod:`scalr_queue.redis._keys` and the constants below, so a key name
lives in one place. The Lua blocks here (priority bands, hold rules, limits, the cancel splice)
are prepended to the scripts that use them; each defines local functions only.
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


def lua(source: str, *, allow_oom: bool = False) -> str:
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
