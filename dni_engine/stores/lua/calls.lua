-- The call log script of dni_engine.stores.redis: the log of recorded calls, one record
-- per call id, changed atomically. Every key carries the call log's hash tag '{c}', so
-- the log lives in one cluster slot. Loaded once by the store, called by SHA with EVALSHA.
--
-- KEYS[1] records  hash  call id -> the call's record (JSON, as CallRecord.to_json)
-- KEYS[2] times    zset  call ids by the time the call started
-- KEYS[3] meta     hash  now: the latest 'recorded' time of a record (the retention clock)
--
-- ARGV[1] op
--
-- op 'record'  ARGV[2] call id  [3] started (exact text)  [4] the record (JSON)
--              [5] recorded (exact text)  [6] capacity  [7] retention (s, 0 for none)
--   Inserts the record unless the call id is logged, then keeps at most ``capacity``
--   calls (the call that started first goes first) and drops calls that started more
--   than ``retention`` seconds before the latest recorded time.
--   returns {'recorded'} | {'exists', record}: the record logged before, unchanged
-- op 'find'    ARGV[2] call id
--   returns {'found', record} | {'none'}
-- op 'forget'  ARGV[2] visitor id  [3] the visitor id as written inside a JSON string
--              [4..] lease ids of the visitor
--   Deletes every record whose attribution names the visitor (its lease's or a
--   candidate's visitor_id), and in the others clears 'displaced_by' naming one of the
--   visitor's leases (those given and those of the deleted records).
--   returns {'forgot', records removed}
-- op 'list'    ARGV[2] since  [3] until
--   returns {'calls', record...}: calls that started in [since, until), oldest first
--           (calls that started at the same time: by call id)

local op = ARGV[1]
local RECORDS, TIMES, META = KEYS[1], KEYS[2], KEYS[3]

if op == 'record' then
  local id = ARGV[2]
  local found = redis.call('HGET', RECORDS, id)
  if found then return {'exists', found} end
  redis.call('HSET', RECORDS, id, ARGV[4])
  redis.call('ZADD', TIMES, ARGV[3], id)
  local now = tonumber(redis.call('HGET', META, 'now') or '-inf')
  if tonumber(ARGV[5]) > now then
    now = tonumber(ARGV[5])
    redis.call('HSET', META, 'now', ARGV[5])
  end
  local over = redis.call('ZCARD', TIMES) - tonumber(ARGV[6])
  if over > 0 then
    for _, old in ipairs(redis.call('ZRANGE', TIMES, 0, over - 1)) do
      redis.call('HDEL', RECORDS, old)
      redis.call('ZREM', TIMES, old)
    end
  end
  local retention = tonumber(ARGV[7])
  if retention > 0 then
    local cutoff = string.format('(%.17g', now - retention)
    while true do
      local old = redis.call('ZRANGEBYSCORE', TIMES, '-inf', cutoff, 'LIMIT', 0, 256)
      if #old == 0 then break end
      for _, m in ipairs(old) do
        redis.call('HDEL', RECORDS, m)
        redis.call('ZREM', TIMES, m)
      end
    end
  end
  return {'recorded'}
end

if op == 'find' then
  local found = redis.call('HGET', RECORDS, ARGV[2])
  if found then return {'found', found} end
  return {'none'}
end

if op == 'list' then
  local out = {'calls'}
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', TIMES, ARGV[2], '(' .. ARGV[3])) do
    local record = redis.call('HGET', RECORDS, id)
    if record then out[#out + 1] = record end
  end
  return out
end

if op == 'forget' then
  local visitor, removed = ARGV[2], 0
  local ids = {}  -- the visitor's lease ids: from the pools (ARGV[4..]) and the records
  for k = 4, #ARGV do ids[ARGV[k]] = true end
  local function names(lease)
    if type(lease) == 'table' and lease.visitor_id == visitor then
      if type(lease.lease_id) == 'string' then ids[lease.lease_id] = true end
      return true
    end
    return false
  end
  local all = redis.call('HGETALL', RECORDS)
  local kept = {}
  for k = 1, #all, 2 do
    local hit = false
    -- a plain-text search first: decoding every record would be far dearer
    if string.find(all[k + 1], ARGV[3], 1, true) then
      local attribution = cjson.decode(all[k + 1]).attribution or {}
      hit = names(attribution.lease)
      if type(attribution.candidates) == 'table' then
        for _, c in ipairs(attribution.candidates) do if names(c) then hit = true end end
      end
    end
    if hit then
      redis.call('HDEL', RECORDS, all[k])
      redis.call('ZREM', TIMES, all[k])
      removed = removed + 1
    else
      kept[#kept + 1] = k
    end
  end
  -- another visitor's lease displaced by one of theirs keeps no link to it
  local function escape(text) return (string.gsub(text, '[%^%$%(%)%%%.%[%]%*%+%-%?]', '%%%0')) end
  for id in pairs(ids) do
    local field = '"displaced_by":"' .. id .. '"'
    local pattern = escape(field)
    for _, k in ipairs(kept) do
      if string.find(all[k + 1], field, 1, true) then
        all[k + 1] = string.gsub(all[k + 1], pattern, '"displaced_by":null')
        redis.call('HSET', RECORDS, all[k], all[k + 1])
      end
    end
  end
  return {'forgot', removed}
end

return redis.error_reply('dni-engine call log script: unknown operation ' .. tostring(op))
