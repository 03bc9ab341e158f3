local lockKey = KEYS[1]
-- Reads a lock without changing it (expired entries are only skipped, not removed).
-- Returns { lastFence, queued, token1, weight1, ttlMs1, token2, ... } for unexpired holders.

local _, now = serverTime()
local reply = { 0, 0 }
local fields = redis.call('HGETALL', lockKey)
for i = 1, #fields, 2 do
  local name, value = fields[i], fields[i + 1]
  local kind = string.sub(name, 1, 1)
  if kind == '#' then
    local leaseEnd, weight = splitPair(value, 1)
    if leaseEnd > now then
      reply[#reply + 1] = string.sub(name, 2)
      reply[#reply + 1] = weight
      reply[#reply + 1] = leaseEnd - now
    end
  elseif kind == '?' then
    if readPlace(value)[2] > now then
      reply[2] = reply[2] + 1
    end
  elseif name == 'fence' then
    reply[1] = tonumber(value)
  end
end
return reply
