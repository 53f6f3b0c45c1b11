-- The registry script of dni_engine.stores.redis: which pool owns each number, checked
-- against every other pool's numbers and written atomically (all keys in the slot {r}).
--
-- KEYS[1] pools     hash  pool key -> its numbers and overflow number (JSON)
-- KEYS[2] order     list  pool keys in registration order
-- KEYS[3] numbers   hash  tracking number -> its pool's key
-- KEYS[4] overflow  hash  overflow number -> keys of the pools naming it (JSON list)
--
-- ARGV[1] pool key  ARGV[2] overflow number ('' none)  ARGV[3..] the pool's numbers
--
-- returns {'ok'}
--       | {'problems', kind, number, other pool, ...}: nothing written; kind is
--         number | overflow_number | tracking_number (stores.base.ConflictKind)

local POOLS, ORDER, NUMBERS, OVERFLOW = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local key, overflow = ARGV[1], ARGV[2]
local mine = {}
for k = 3, #ARGV do mine[#mine + 1] = ARGV[k] end
local keys = redis.call('LRANGE', ORDER, 0, -1)
local problems = {'problems'}
local function problem(kind, number, other)
  table.insert(problems, kind); table.insert(problems, number); table.insert(problems, other)
end
for _, other in ipairs(keys) do
  if other ~= key then
    local terms = cjson.decode(redis.call('HGET', POOLS, other))
    local theirs = {}
    for _, n in ipairs(terms['numbers']) do theirs[n] = true end
    for _, n in ipairs(mine) do
      if theirs[n] then problem('number', n, other) end
      if n == terms['overflow'] then problem('overflow_number', n, other) end
    end
    if overflow ~= '' and theirs[overflow] then problem('tracking_number', overflow, other) end
  end
end
if #problems > 1 then return problems end
local previous = redis.call('HGET', POOLS, key)
if previous then
  for _, n in ipairs(cjson.decode(previous)['numbers']) do
    if redis.call('HGET', NUMBERS, n) == key then redis.call('HDEL', NUMBERS, n) end
  end
else
  redis.call('RPUSH', ORDER, key)
  keys[#keys + 1] = key
end
for _, n in ipairs(mine) do redis.call('HSET', NUMBERS, n, key) end
local encoded = '{"numbers":[],"overflow":' .. cjson.encode(overflow) .. '}'
if #mine > 0 then encoded = cjson.encode({numbers = mine, overflow = overflow}) end
redis.call('HSET', POOLS, key, encoded)
local owners = {}
local owner_order = {}
for _, k in ipairs(keys) do
  local o = cjson.decode(redis.call('HGET', POOLS, k))['overflow']
  if o ~= '' then
    if not owners[o] then owners[o] = {}; owner_order[#owner_order + 1] = o end
    table.insert(owners[o], k)
  end
end
redis.call('DEL', OVERFLOW)
for _, o in ipairs(owner_order) do redis.call('HSET', OVERFLOW, o, cjson.encode(owners[o])) end
return {'ok'}
