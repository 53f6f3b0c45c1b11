-- The pool script of the previous release, unchanged below these two lines: the upgrade
-- tests (tests/test_store_redis_upgrade.py) run it beside the current one on one state.
-- The pool script of dni_engine.stores.redis: every operation on one lease pool, run
-- atomically in the pool's slot. The visit algorithm is that of dni_engine/stores/base.py;
-- "step N" cites its steps. Loaded once by the store, called by SHA with EVALSHA.
--
-- KEYS[1] cfg       hash  terms, time watermark (now), lease sequence (seq), counters
-- KEYS[2] free      zset  free numbers '%06d:<number>' (index in the pool) by free-since
-- KEYS[3] live      zset  live leases by expiry
-- KEYS[4] holder    hash  number -> its live lease
-- KEYS[5] visitors  hash  visitor -> their live lease in this pool
-- KEYS[6] log       zset  the lease log: leases by start time
-- KEYS[7] order     hash  number -> index in the pool (API order)
-- The script also uses <base>:l:<lease> (a lease record, hash), <base>:n:<number> (the
-- lease log of one number, zset) and <base>:clients (hash: client key -> how many live
-- leases of the pool were started with it, for the client cap), built from ARGV[2]: the
-- same slot as KEYS. An op 'visit' is sent only the first key, cfg, and builds the others
-- it uses from ARGV[2] in the same way (each key sent costs a visit more than one built).
--
-- ARGV[1] op   ARGV[2] base: the pool's key prefix '<ns>:{p:<pool>}'
-- ARGV[3] now: the caller's time as exact text, or '' for Redis TIME (server time)
--
-- A lease is named by its member '<epoch>.<seq, %012d>'. Its record's fields: v visitor,
-- n number, s started, a last activity, e expires, d ended, r end reason, b displaced by
-- (a member), p specificity, i source index, f referrer_domain (the claiming source's, as
-- configured), y referrer_domain is Any (1/0), t trigger (absent: none), z the visit's
-- attribution facts as compact JSON (absent: none), x pushed out of the log (the record
-- is kept while live), c the client key of the visit that started it (absent: none).
-- A lease snapshot in a reply is the member and 13 record fields (SNAPSHOT), in order:
--   snapshot {member, visitor_id, number, started, last_activity, expires, ended, end_reason,
--             displaced_by, specificity, source_index, referrer_domain, trigger, facts}
-- Times in replies are text and counts integers; a missing field (false) is nil there.
--
-- Every op but 'register' and 'reset' answers {'unregistered'} when the pool has no state,
-- and may answer {'lost', what} when a record it needs is missing (changing nothing more).
--
-- op 'register'   ARGV[4] name  [5] hold (s)  [6] cooldown (s)  [7] policy
--                 [8] overflow number shown ('' none)  [9] touch  [10] epoch for new state
--                 [11] new state is trusted (1/0)  [12] clock skew tolerance (s)
--                 [13] client cap (0: none)  [14..] the numbers, in API order
--   returns 'ok' | 'repaired' (a poisoned pool time was brought back to ARGV[3])
-- op 'reset'      ARGV[4..] the pool's numbers: drops every key of the pool
--   returns {'reset'}
-- op 'visit'      ARGV[4] visitor  [5] mode: visit | keep | switch_in | held (steps 1-3
--                 only, as visit: a claim on this pool without a live lease answers 'none')
--                 [6] claim: - (none) | here | other (a claim on another pool)
--                 [7] the pool's hold as the caller registered it ('' unknown)
--                 [8] the caller's time plus that hold, as exact text ('' none): a
--                 lease's expiry when ARGV[3] and [7] are the pool's time and hold (else
--                 it is formatted here)
--                 [9] specificity  [10] source index  [11] referrer_domain
--                 [12] referrer_domain is Any (1/0)  [13] trigger: - (none) | +<trigger>
--                 [14] log capacity  [15] log retention (s)
--                 [16] the visit's facts, JSON ('' none): recorded on a lease it starts
--                 [17] the visit's client key ('' or absent: none), for the client cap
--                 (held reads nothing after [12], and [9..12] only for a claim on another
--                 pool: what it leaves unread may be left out)
--   returns {'kept', now, number, name, source_index, referrer_domain, trigger, lease,
--            started, expires}: now is '' when it is the caller's time (ARGV[3]), and
--            expires '' too when it is also the caller's expiry (ARGV[8])
--         | {'new' | 'recycled', now, number, name, false, false, false, lease, started,
--            expires[, displaced lease]}
--         | {'switch', now, number, name, false, false, false, lease}: a last-touch
--            switch is allowed (nothing changed; the caller takes in the claimed pool)
--         | {'none', now}: no live lease here, and the claim is not on this pool (or the
--            mode is held)
--         | {'nofree', now}: switch_in found no number free right now
--         | {'overflow', now, overflow number | false, name}
--         | {'capped', now, false, name}: the client holds the cap's live leases here
--           (a switch_in answers 'nofree' instead)
-- op 'switch_out' ARGV[4] lease
--   returns {'switched', now} | {'gone', now}: the lease was no longer live
-- op 'release'    ARGV[4] visitor
--   returns {'released', now, snapshot} | {'none', now}
-- op 'attribute'  ARGV[4] number  [5] time of the call
--   returns {'attributed', pool time, since, trusted, longest hold, snapshot...}: since is
--           when this state began ('' not yet), trusted '1' | '0' (see the store's doc)
-- op 'leases'     ARGV[4] number ('' every number)  [5] since  [6] until
--   returns {'leases', pool time, snapshot...}: leases whose window overlaps [since, until)
-- op 'stats'
--   returns {'stats', now, size, live, cooling, free, new, kept, overflows, recycled,
--            displacements, cooldowns_cut, switched_in, switched_out, expired, released,
--            capped}
-- op 'purge'
--   returns {'purged', now, leases ended}
-- op 'forget'     ARGV[4] visitor
--   Ends the visitor's live lease as a release would (counted as released, its number
--   cooling), then deletes every lease record of the visitor with its entries in the log,
--   the per-number logs and the live set, and clears 'displaced by' links to them.
--   returns {'forgot', now, live leases released, log entries removed, lease member...}

local op, base, now_arg = ARGV[1], ARGV[2], ARGV[3]
local CFG = KEYS[1]
-- A pool key sent in KEYS (every op but 'visit'), else built from the pool's prefix.
local function pkey(k, name) return KEYS[k] or base .. name end
local VISITORS = pkey(5, ':visitors')
local LIVE  -- a visit that keeps no lease needs no live set: built where it is used

local function fmt(x) return string.format('%.17g', x) end
-- Numbers read as text are converted by arithmetic (``s + 0``), not ``tonumber``:
-- Lua 5.1's ``tonumber`` parses the text twice (a check, then the conversion). Counts
-- written back are passed to redis.call as numbers (Redis writes them as integer text
-- with '%.17g'): measured, that costs less than string.format('%d') in the script.

-- The fields of cfg a returning visit needs come first (each field read costs, one the
-- hash lacks the most): a kept lease is decided by the block right after, before the rest
-- of the script is set up (every statement run before it costs each visit). A visit reads
-- touch only for a claim on another pool (the only one it can switch), and 'since' only
-- when the pool has no watermark yet: both are written by the first clock (step 1), so a
-- pool with a watermark has its 'since'. A visit that may take a number (a claim on this
-- pool, not held) reads in the same command the fields a take with a free number needs
-- (each command a script calls costs more than a field): the client cap only with a
-- client key, switched_in only for a switch_in; what only an exhausted pool needs
-- (policy, overflow, size) is read there.
local hot, TOUCH, SINCE
if op ~= 'visit' then
  hot = redis.call('HMGET', CFG, 'name', 'hold', 'now', 'kept', 'touch', 'since')
  TOUCH, SINCE = hot[5], hot[6]
elseif ARGV[6] == 'here' and ARGV[5] ~= 'held' then
  if (ARGV[17] or '') == '' and ARGV[5] ~= 'switch_in' then
    hot = redis.call('HMGET', CFG, 'name', 'hold', 'now', 'kept',
      'cooldown', 'epoch', 'seq', 'new', 'expired')
  else
    hot = redis.call('HMGET', CFG, 'name', 'hold', 'now', 'kept',
      'cooldown', 'epoch', 'seq', 'new', 'expired', 'cap', 'switched_in')
  end
elseif ARGV[6] == 'other' then
  hot = redis.call('HMGET', CFG, 'name', 'hold', 'now', 'kept', 'touch')
  TOUCH = hot[5]
else
  hot = redis.call('HMGET', CFG, 'name', 'hold', 'now', 'kept')
end
local NAME, SEEN = hot[1], hot[3]
if op == 'visit' and NAME then
  if SEEN then SINCE = true else SINCE = redis.call('HGET', CFG, 'since') end
end

-- A visit's lease expiry at ``now`` (text ``now_s``): now + hold as exact text. The
-- caller's own text (ARGV[8]) when the time is the caller's and its hold (ARGV[7]) is
-- the pool's, the same number (formatting is not free); else formatted here.
local function expiry(now, now_s)
  if now_s == now_arg and ARGV[7] == hot[2] and ARGV[8] ~= '' then return ARGV[8] end
  return fmt(now + hot[2])
end

-- step 1: time never goes backwards inside a pool. Returns the time and its exact
-- text (the caller's own string when it is used as is: formatting is not free).
-- With ``write`` the new watermark is stored now; otherwise the caller stores it.
local function clock(write)
  local now, text
  if now_arg == '' then
    local t = redis.call('TIME')
    now = t[1] + t[2] / 1000000
    text = fmt(now)
  else
    now, text = now_arg + 0, now_arg
  end
  if not SINCE then  -- the first operation on newly created state: when it began
    redis.call('HSET', CFG, 'since', text)
    SINCE = text
  end
  if SEEN then
    local seen = SEEN + 0
    if seen >= now then return seen, SEEN, false end
  end
  if write then redis.call('HSET', CFG, 'now', text) end
  return now, text, true
end

-- A visit's steps 1-3 (the whole of a returning visit). A visit going on to take a
-- number (steps 4-6, below) leaves its time here, with the watermark still to write.
local VISIT_NOW, VISIT_NOW_S, VISIT_RAISED
if op == 'visit' and NAME then
  local visitor, mode, claim = ARGV[4], ARGV[5], ARGV[6]
  local now, now_s, raised = clock(false)
  -- step 2: a live lease in this pool is kept, or may yield to a more specific match
  local m = redis.call('HGET', VISITORS, visitor)
  if m then
    -- mirrors leases.may_switch: under last touch, a claim on another pool moves the
    -- lease when it is more specific (more conditions, then a referrer over Any)
    local switchable = claim == 'other' and (mode == 'visit' or mode == 'held')
      and TOUCH == 'last_touch'
    local record = base .. ':l:' .. m
    local r
    if switchable then
      r = redis.call('HMGET', record, 'n', 's', 'e', 'd', 'i', 'f', 't', 'p', 'y')
    else
      r = redis.call('HMGET', record, 'n', 's', 'e', 'd', 'i', 'f', 't')
    end
    if not r[1] then return {'lost', 'the lease record of a visitor'} end
    if not r[4] and now < r[3] + 0 then
      if switchable then
        local spec, held = ARGV[9] + 0, r[8] + 0
        local switch
        if spec ~= held then switch = spec > held else switch = r[9] == '1' and ARGV[12] == '0' end
        if switch then
          if raised then redis.call('HSET', CFG, 'now', now_s) end
          return {'switch', now_s, r[1], NAME, false, false, false, m}
        end
      end
      local expires = expiry(now, now_s)
      redis.call('HSET', record, 'a', now_s, 'e', expires)
      redis.call('ZADD', pkey(3, ':live'), expires, m)
      -- the commonest visit: its counter and the watermark in one write
      local kept = (hot[4] or 0) + 1
      if raised then
        redis.call('HSET', CFG, 'kept', kept, 'now', now_s)
      else
        redis.call('HSET', CFG, 'kept', kept)
      end
      -- the caller's own time and expiry (ARGV[3], ARGV[8]) are answered as '': it has
      -- them as numbers, and parsing them back is not free
      if now_s == now_arg then
        if expires == ARGV[8] then expires = '' end
        now_s = ''
      end
      return {'kept', now_s, r[1], NAME, r[5], r[6], r[7], m, r[2], expires}
    end
  end
  -- step 3: no live lease here; a claim on another pool is the caller's to run there
  if claim ~= 'here' or mode == 'held' then
    if raised then redis.call('HSET', CFG, 'now', now_s) end
    return {'none', now_s}
  end
  VISIT_NOW, VISIT_NOW_S, VISIT_RAISED = now, now_s, raised
end

-- Everything but a visit decided above: the rest of the keys, cfg and helpers.
LIVE = pkey(3, ':live')
local FREE, HOLDER, LOG, ORDER = pkey(2, ':free'), pkey(4, ':holder'), pkey(6, ':log'),
  pkey(7, ':order')
local function lkey(m) return base .. ':l:' .. m end
local function nkey(number) return base .. ':n:' .. number end
local CLIENTS = base .. ':clients'
local function opt(s) if string.sub(s, 1, 1) == '+' then return string.sub(s, 2) end return nil end

-- The rest of cfg: a visit here takes a number and read what a take needs at the top
-- (an exhausted pool reads its policy, overflow and size where it needs them); every
-- other operation reads it here. Text, but COOLDOWN (a number, nil without state).
local COOLDOWN, EPOCH, SEQ, NEW, EXPIRED, CAP, SWITCHED_IN, POLICY, OVERFLOW, SIZE, MAXHOLD
if op == 'visit' then
  COOLDOWN, EPOCH, SEQ, NEW, EXPIRED, CAP, SWITCHED_IN =
    hot[5], hot[6], hot[7], hot[8], hot[9], hot[10], hot[11]
else
  local c = redis.call('HMGET', CFG, 'cooldown', 'policy', 'overflow', 'maxhold', 'epoch',
    'size', 'cap', 'seq', 'new', 'switched_in', 'expired')
  COOLDOWN, POLICY, OVERFLOW, MAXHOLD, EPOCH, SIZE, CAP, SEQ, NEW, SWITCHED_IN, EXPIRED =
    c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11]
end
COOLDOWN = COOLDOWN and COOLDOWN + 0
EPOCH = EPOCH or ''
local function bump(name) return redis.call('HINCRBY', CFG, name, 1) end
-- A lease's member: the pool's epoch (new each time its state is created, so ids
-- are never reused after a loss) and a zero-padded sequence (ties: taken first).
local function pad(seq) return EPOCH .. '.' .. string.format('%012d', seq) end

-- Records the script needs and cannot find mean the pool's state was partly lost
-- (evicted or deleted keys). The script then changes nothing more and answers
-- LOST; the caller resets the pool and registers it again.
local function lost(what) return {'lost', what} end

-- Deletes every key of the pool (its lease records and per-number logs included).
local function reset(numbers)
  local members = {}
  for _, key in ipairs({LIVE, LOG}) do
    for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do members[m] = true end
  end
  for _, key in ipairs({HOLDER, VISITORS}) do
    for _, m in ipairs(redis.call('HVALS', key)) do members[m] = true end
  end
  for m in pairs(members) do redis.call('DEL', lkey(m)) end
  for _, n in ipairs(redis.call('HKEYS', ORDER)) do redis.call('DEL', nkey(n)) end
  for _, n in ipairs(numbers) do redis.call('DEL', nkey(n)) end
  redis.call('DEL', CFG, FREE, LIVE, HOLDER, VISITORS, LOG, ORDER, CLIENTS)
end

-- ``since``: the time as exact text (a number from the caller's or Redis's own text).
local function free_number(number, since)
  local index = redis.call('HGET', ORDER, number)
  if index then  -- a number dropped from the pool is not leased again
    redis.call('ZADD', FREE, since, string.format('%06d:%s', index, number))
  end
end

-- One live lease started with ``client`` ended: the client's count goes down.
local function uncount(client)
  if redis.call('HINCRBY', CLIENTS, client, -1) <= 0 then redis.call('HDEL', CLIENTS, client) end
end

-- Ends the live lease ``m`` whose record's fields v, n, x, c are ``rec``, at ``at`` (exact
-- text), but leaves its live entry and the end reason's counter to the caller.
local function finish(m, rec, at, reason, by)
  local key = lkey(m)
  if by then
    redis.call('HSET', key, 'd', at, 'r', reason, 'b', by)
  else
    redis.call('HSET', key, 'd', at, 'r', reason)
  end
  if redis.call('HGET', VISITORS, rec[1]) == m then redis.call('HDEL', VISITORS, rec[1]) end
  if redis.call('HGET', HOLDER, rec[2]) == m then redis.call('HDEL', HOLDER, rec[2]) end
  if rec[4] then uncount(rec[4]) end
  -- a lease already pushed out of the log (x) was kept only while it was live
  if rec[3] then redis.call('DEL', key) end
end

-- Ends the live lease ``m`` at ``at`` (exact text); returns its record's v, n, x, c.
local function close(m, at, reason, by)
  local rec = redis.call('HMGET', lkey(m), 'v', 'n', 'x', 'c')
  finish(m, rec, at, reason, by)
  redis.call('ZREM', LIVE, m)
  if reason == 'expired' or reason == 'released' then bump(reason) end
  return rec
end

-- step 4: leases whose hold ran out end at their expiry, freeing their number then.
-- Answers LOST, changing nothing, when a due lease's record is missing; else nil and
-- how many ended. With ``defer`` their counter is left to the caller.
local function expire(now_s, defer)
  local due = redis.call('ZRANGEBYSCORE', LIVE, '-inf', now_s, 'WITHSCORES')
  if #due == 0 then return nil, 0 end
  local recs, members = {}, {}
  for k = 1, #due, 2 do
    local rec = redis.call('HMGET', lkey(due[k]), 'v', 'n', 'x', 'c')
    if not rec[2] then return lost('lease record') end  -- every record has its number
    recs[#recs + 1] = rec
    members[#members + 1] = due[k]
  end
  for k = 1, #members do
    local e = due[2 * k]
    finish(members[k], recs[k], e, 'expired')
    free_number(recs[k][2], e)
  end
  -- in slices: unpack has a limit (a long idle pool may have thousands of leases due)
  for k = 1, #members, 1000 do
    redis.call('ZREM', LIVE, unpack(members, k, math.min(k + 999, #members)))
  end
  if not defer then redis.call('HINCRBY', CFG, 'expired', #members) end
  return nil, #members
end

-- Drops the lease ``m``, already out of the log, from its number's log, and its record
-- once it ended (a live lease's record is marked x, pushed out, and kept until it ends).
local function unlog(m)
  local key = lkey(m)
  local r = redis.call('HMGET', key, 'n', 'd')
  if r[1] then redis.call('ZREM', nkey(r[1]), m) end
  if r[2] then redis.call('DEL', key) else redis.call('HSET', key, 'x', '1') end
end

-- The log keeps at most ``capacity`` leases; every 16th lease also drops (up to 32)
-- leases whose window ended ``retention`` seconds ago (text, read only then), oldest first.
local function trim(now, seq, capacity, retention_s)
  -- the log never holds more leases than were ever started (seq) in this state; past
  -- that, the leases older than the newest ``capacity`` (none while it is not full) leave
  -- it in one command
  if seq > capacity then
    local over = redis.call('ZRANGE', LOG, 0, -capacity - 1)
    if #over > 0 then
      redis.call('ZREMRANGEBYRANK', LOG, 0, #over - 1)
      for _, m in ipairs(over) do unlog(m) end
    end
  end
  local retention = seq % 16 == 0 and tonumber(retention_s) or 0
  if retention > 0 then
    local horizon = now - retention
    local old = redis.call('ZRANGEBYSCORE', LOG, '-inf', '(' .. fmt(horizon), 'LIMIT', 0, 32)
    for _, m in ipairs(old) do
      local e = redis.call('HGET', lkey(m), 'e')
      if e and tonumber(e) > horizon then break end
      redis.call('ZREM', LOG, m)
      unlog(m)
    end
  end
end

-- The record fields of a lease snapshot, after its member (see the header).
local SNAPSHOT = {'v', 'n', 's', 'a', 'e', 'd', 'r', 'b', 'p', 'i', 'f', 't', 'z'}
local function snapshot(out, m)
  local r = redis.call('HMGET', lkey(m), unpack(SNAPSHOT))
  out[#out + 1] = m
  for k = 1, #SNAPSHOT do out[#out + 1] = r[k] end
end

if op == 'register' then
  local first = 14
  local list = {}
  for k = first, #ARGV do list[#list + 1] = ARGV[k] end
  if not NAME then
    -- No state (a first registration, or a loss): clear what an eviction may have left.
    reset(list)
    redis.call('HSET', CFG, 'epoch', ARGV[10], 'trusted', ARGV[11])
    EPOCH = ARGV[10]
  elseif EPOCH == '' then
    redis.call('HSET', CFG, 'epoch', ARGV[10])
  end
  local numbers = {}
  for k = first, #ARGV do numbers[ARGV[k]] = k - first end
  local known = {}
  for _, n in ipairs(redis.call('HKEYS', ORDER)) do known[n] = true end
  redis.call('DEL', ORDER)
  for n, index in pairs(numbers) do redis.call('HSET', ORDER, n, index) end
  local free = redis.call('ZRANGE', FREE, 0, -1, 'WITHSCORES')
  redis.call('DEL', FREE)
  for k = 1, #free, 2 do
    local n = string.sub(free[k], 8)
    if numbers[n] then
      redis.call('ZADD', FREE, free[k + 1], string.format('%06d:%s', numbers[n], n))
    end
  end
  for k = first, #ARGV do
    local n = ARGV[k]
    if not known[n] and redis.call('HEXISTS', HOLDER, n) == 0 then
      redis.call('ZADD', FREE, '-inf', string.format('%06d:%s', k - first, n))
    end
  end
  local hold = tonumber(ARGV[5])
  local maxhold = tonumber(MAXHOLD)
  if maxhold and maxhold > hold then hold = maxhold end
  redis.call('HSET', CFG, 'name', ARGV[4], 'hold', ARGV[5], 'cooldown', ARGV[6],
    'policy', ARGV[7], 'overflow', ARGV[8], 'touch', ARGV[9], 'maxhold', fmt(hold),
    'size', tostring(#list), 'cap', ARGV[13])
  -- A watermark far ahead of the registering engine's clock was poisoned (a time in
  -- milliseconds, say): bring the pool back to that clock, with the leases and free
  -- numbers stamped in that future.
  if now_arg ~= '' and SEEN then
    local now, tolerance = tonumber(now_arg), tonumber(ARGV[12])
    if tonumber(SEEN) > now + tolerance then
      local until_ = now + tonumber(ARGV[5])
      local ahead = redis.call('ZRANGEBYSCORE', LIVE, '(' .. fmt(until_), '+inf')
      for _, m in ipairs(ahead) do
        if redis.call('EXISTS', lkey(m)) == 1 then
          redis.call('HSET', lkey(m), 'a', now_arg, 'e', fmt(until_))
          redis.call('ZADD', LIVE, fmt(until_), m)
        end
      end
      local later = redis.call('ZRANGEBYSCORE', FREE, '(' .. now_arg, '+inf')
      for _, member in ipairs(later) do redis.call('ZADD', FREE, now_arg, member) end
      redis.call('HSET', CFG, 'now', now_arg)
      return 'repaired'
    end
  end
  return 'ok'
end

if op == 'reset' then
  local list = {}
  for k = 4, #ARGV do list[#list + 1] = ARGV[k] end
  reset(list)
  return {'reset'}
end

if not NAME then return {'unregistered'} end

if op == 'visit' then
  -- steps 4-6 (steps 1-3 ran at the top): the visitor takes a number here. The
  -- watermark, when raised, is written with the first write to cfg on the way out.
  local visitor, mode, any = ARGV[4], ARGV[5], ARGV[12]
  local now, now_s = VISIT_NOW, VISIT_NOW_S
  local pending = VISIT_RAISED
  -- the leases step 4 ended are counted with the first write to cfg on the way out too
  local gone, ended = expire(now_s, true)
  ended = ended or 0
  local function settle()
    if pending and ended > 0 then
      redis.call('HSET', CFG, 'now', now_s, 'expired', (EXPIRED or 0) + ended)
    elseif pending then
      redis.call('HSET', CFG, 'now', now_s)
    elseif ended > 0 then
      redis.call('HSET', CFG, 'expired', (EXPIRED or 0) + ended)
    end
    pending, ended = false, 0
  end
  if gone then settle(); return gone end
  -- step 4a: a client holding the cap's live leases here gets no number
  local client = ARGV[17]
  if client == '' then client = nil end
  local cap = client and (CAP or 0) + 0
  if client and cap > 0 and tonumber(redis.call('HGET', CLIENTS, client) or '0') >= cap then
    settle()
    if mode == 'switch_in' then return {'nofree', now_s} end
    bump('capped')
    return {'capped', now_s, false, NAME}
  end
  local capacity = ARGV[14] + 0
  -- Starts the visitor's lease on ``number``, the pool's lease ``seq`` (nil: the next).
  local function open(number, seq)
    seq = seq or bump('seq')
    local lm = pad(seq)
    local expires = expiry(now, now_s)
    local rec = {'v', visitor, 'n', number, 's', now_s, 'a', now_s, 'e', expires,
      'p', ARGV[9], 'i', ARGV[10], 'f', ARGV[11], 'y', any}
    local trigger = opt(ARGV[13])
    if trigger then rec[#rec + 1] = 't'; rec[#rec + 1] = trigger end
    local facts = ARGV[16]
    if facts and facts ~= '' then rec[#rec + 1] = 'z'; rec[#rec + 1] = facts end
    if client then
      rec[#rec + 1] = 'c'; rec[#rec + 1] = client
      redis.call('HINCRBY', CLIENTS, client, 1)
    end
    redis.call('HSET', lkey(lm), unpack(rec))
    redis.call('HSET', HOLDER, number, lm)
    redis.call('ZADD', LIVE, expires, lm)
    redis.call('HSET', VISITORS, visitor, lm)
    redis.call('ZADD', LOG, now_s, lm)
    redis.call('ZADD', nkey(number), now_s, lm)
    trim(now, seq, capacity, ARGV[15])
    return lm, expires
  end
  -- step 5: the number free longest, once out of its cooldown
  local top = redis.call('ZPOPMIN', FREE)
  if top[1] and top[2] + 0 + COOLDOWN <= now then
    local number = string.sub(top[1], 8)
    -- the lease sequence and the counters (read at the top) in one write with the watermark
    local seq = (SEQ or 0) + 1
    local counts = {'seq', seq, 'new', (NEW or 0) + 1}
    if mode == 'switch_in' then
      counts[5] = 'switched_in'; counts[6] = (SWITCHED_IN or 0) + 1
    end
    if pending then counts[#counts + 1] = 'now'; counts[#counts + 1] = now_s end
    if ended > 0 then
      counts[#counts + 1] = 'expired'
      counts[#counts + 1] = (EXPIRED or 0) + ended
    end
    redis.call('HSET', CFG, unpack(counts))
    local lm, expires = open(number, seq)
    return {'new', now_s, number, NAME, false, false, false, lm, now_s, expires}
  end
  settle()
  -- An exhausted pool is checked against its own bookkeeping first (cheap counts):
  -- every number is free or held, every held number has a live entry and a visitor.
  -- Keys evicted from under the pool would otherwise exhaust it for good.
  local terms = redis.call('HMGET', CFG, 'policy', 'overflow', 'size')
  POLICY, OVERFLOW, SIZE = terms[1], terms[2], tonumber(terms[3])
  if OVERFLOW == '' then OVERFLOW = false end
  if SIZE then
    local held = redis.call('HLEN', HOLDER)
    local free_count = redis.call('ZCARD', FREE) + (top[1] and 1 or 0)
    if redis.call('HLEN', ORDER) ~= SIZE or free_count + held < SIZE
        or redis.call('ZCARD', LIVE) < held or redis.call('HLEN', VISITORS) < held then
      if top[1] then redis.call('ZADD', FREE, top[2], top[1]) end
      return lost('the free or held numbers')
    end
    -- An LRU eviction takes the idlest records first: those of the leases next to expire.
    for _, m in ipairs(redis.call('ZRANGE', LIVE, 0, 7)) do
      if redis.call('EXISTS', lkey(m)) == 0 then
        if top[1] then redis.call('ZADD', FREE, top[2], top[1]) end
        return lost('the lease record of a live lease')
      end
    end
  end
  -- step 6: the exhausted pool's policy (top, if any, is the number cooling longest);
  -- mirrors leases.exhausted_action (cooling: top; live: a held number), and a switch_in
  -- takes no action: the visitor keeps their lease
  local action = POLICY
  if mode == 'switch_in' then action = 'none'
  elseif POLICY == 'recycle' then
    if top[1] then action = 'cut_cooldown'
    elseif redis.call('HLEN', HOLDER) > 0 then action = 'displace'
    else action = 'fallback' end
  end
  if top[1] and action ~= 'cut_cooldown' then redis.call('ZADD', FREE, top[2], top[1]) end
  if action == 'none' then return {'nofree', now_s} end
  if action == 'cut_cooldown' then
    local number = string.sub(top[1], 8)
    bump('recycled')
    bump('cooldowns_cut')
    local lm, expires = open(number)
    return {'recycled', now_s, number, NAME, false, false, false, lm, now_s, expires}
  end
  if action == 'displace' then
    local idlest = redis.call('ZRANGE', LIVE, 0, 0)[1]
    if idlest and redis.call('EXISTS', lkey(idlest)) == 0 then
      return lost('the lease record of a live lease')
    end
    if idlest then
      local seq = bump('seq')
      local number = close(idlest, now_s, 'displaced', pad(seq))[2]
      bump('recycled')
      bump('displacements')
      local lm, expires = open(number, seq)
      return {'recycled', now_s, number, NAME, false, false, false, lm, now_s, expires, idlest}
    end
  end
  bump('overflows')
  return {'overflow', now_s, OVERFLOW, NAME}
end

if op == 'switch_out' then
  -- ends the lease as switched (its number starts cooling) if it is still live
  local m = ARGV[4]
  local now, now_s = clock(true)
  local r = redis.call('HMGET', lkey(m), 'n', 'e', 'd')
  if r[1] and not r[3] and now < tonumber(r[2]) then
    close(m, now_s, 'switched')
    free_number(r[1], now_s)
    bump('switched_out')
    return {'switched', now_s}
  end
  return {'gone', now_s}
end

if op == 'release' then
  local now, now_s = clock(true)
  local m = redis.call('HGET', VISITORS, ARGV[4])
  if m then
    if redis.call('EXISTS', lkey(m)) == 0 then return lost('the lease record of a visitor') end
    local out = {'released', now_s}
    snapshot(out, m)
    local number, e = out[5], tonumber(out[8])
    if not out[9] and now < e then
      close(m, now_s, 'released')
      free_number(number, now_s)
      out[9], out[10] = now_s, 'released'
      return out
    end
  end
  return {'none', now_s}
end

if op == 'attribute' then
  -- Leases on one number follow each other and a lease's window ends at most one
  -- hold after the next one started: walk back from the last lease started by then
  -- until that bound.
  local number, at = ARGV[4], tonumber(ARGV[5])
  MAXHOLD = tonumber(MAXHOLD)
  local key = nkey(number)
  local found = {}
  local next_start, offset, done = math.huge, 0, false
  while not done do
    local batch = redis.call('ZREVRANGEBYSCORE', key, ARGV[5], '-inf', 'WITHSCORES',
      'LIMIT', offset, 32)
    if #batch == 0 then break end
    for k = 1, #batch, 2 do
      if not (at < next_start + MAXHOLD) then done = true; break end
      local e = redis.call('HGET', lkey(batch[k]), 'e')
      if e and at < tonumber(e) then table.insert(found, 1, batch[k]) end
      next_start = tonumber(batch[k + 1])
    end
    offset = offset + 32
  end
  local holder = redis.call('HGET', HOLDER, number)
  if holder then  -- a live lease already pushed out of the log
    local listed = false
    for _, m in ipairs(found) do if m == holder then listed = true end end
    local s = redis.call('HGET', lkey(holder), 's')
    if not listed and s and tonumber(s) <= at then found[#found + 1] = holder end
  end
  -- with when this state began and whether it is trusted from then on (see the doc)
  local trusted = redis.call('HGET', CFG, 'trusted') or '1'
  local out = {'attributed', SEEN or '-inf', SINCE or '', trusted, fmt(MAXHOLD)}
  for _, m in ipairs(found) do snapshot(out, m) end
  return out
end

if op == 'leases' then
  local since = tonumber(ARGV[5])
  local index = LOG
  if ARGV[4] ~= '' then index = nkey(ARGV[4]) end
  local members = redis.call('ZRANGEBYSCORE', index, '-inf', '(' .. ARGV[6])
  local out = {'leases', SEEN or '-inf'}
  for _, m in ipairs(members) do
    local e = redis.call('HGET', lkey(m), 'e')
    if e and tonumber(e) > since then snapshot(out, m) end
  end
  return out
end

if op == 'stats' then
  local now, now_s = clock(true)
  local gone = expire(now_s)
  if gone then return gone end
  local cooling, free = 0, 0
  local members = redis.call('ZRANGE', FREE, 0, -1, 'WITHSCORES')
  for k = 2, #members, 2 do
    if tonumber(members[k]) + COOLDOWN > now then cooling = cooling + 1 else free = free + 1 end
  end
  local out = {'stats', now_s, redis.call('HLEN', ORDER), redis.call('HLEN', HOLDER),
    cooling, free}
  local c = redis.call('HMGET', CFG, 'new', 'kept', 'overflows', 'recycled', 'displacements',
    'cooldowns_cut', 'switched_in', 'switched_out', 'expired', 'released', 'capped')
  for k = 1, #c do out[#out + 1] = tonumber(c[k] or '0') end
  return out
end

if op == 'purge' then
  local now, now_s = clock(true)
  local before = tonumber(redis.call('HGET', CFG, 'expired') or '0')
  local gone = expire(now_s)
  if gone then return gone end
  return {'purged', now_s, tonumber(redis.call('HGET', CFG, 'expired') or '0') - before}
end

if op == 'forget' then
  local visitor = ARGV[4]
  local now, now_s = clock(true)
  local released = 0
  local m = redis.call('HGET', VISITORS, visitor)
  if m then
    local r = redis.call('HMGET', lkey(m), 'n', 'e', 'd')
    if r[1] and not r[3] then
      local e = tonumber(r[2])
      if now < e then
        close(m, now_s, 'released')
        free_number(r[1], now_s)
        released = 1
      else  -- ran out, not yet noticed: it ends as it would have
        close(m, r[2], 'expired')
        free_number(r[1], r[2])
      end
    end
    redis.call('HDEL', VISITORS, visitor)
  end
  -- every lease the pool still knows: the log, and live leases pushed out of it
  local members, theirs, removed = {}, {}, 0
  for _, key in ipairs({LOG, LIVE}) do
    for _, lm in ipairs(redis.call('ZRANGE', key, 0, -1)) do members[lm] = true end
  end
  if m then members[m] = true end
  for lm in pairs(members) do
    if redis.call('HGET', lkey(lm), 'v') == visitor then theirs[lm] = true end
  end
  for lm in pairs(theirs) do
    local r = redis.call('HMGET', lkey(lm), 'n', 'd', 'c')
    local n = r[1]
    -- a live lease of theirs not found through the visitors hash still leaves its count
    if not r[2] and r[3] then uncount(r[3]) end
    removed = removed + redis.call('ZREM', LOG, lm)
    if n then
      redis.call('ZREM', nkey(n), lm)
      if redis.call('HGET', HOLDER, n) == lm then redis.call('HDEL', HOLDER, n) end
    end
    redis.call('ZREM', LIVE, lm)
    redis.call('DEL', lkey(lm))
  end
  if next(theirs) then
    for lm in pairs(members) do
      local by = redis.call('HGET', lkey(lm), 'b')
      if by and theirs[by] then redis.call('HDEL', lkey(lm), 'b') end
    end
  end
  local out = {'forgot', now_s, released, removed}
  for lm in pairs(theirs) do out[#out + 1] = lm end
  return out
end

return redis.error_reply('dni-engine store script: unknown operation ' .. tostring(op))
