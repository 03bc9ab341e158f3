local holdersKey, weightsKey, fenceKey, queueKey, waitingKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
-- Reads a lock without changing it (expired entries are only skipped, not removed).
-- Returns { lastFence, queued, token1, weight1, ttlMs1, token2, ... } for unexpired holders.

local _, now = serverTime()
local reply = { tonumber(redis.call('GET', fenceKey)) or 0, redis.call('ZCOUNT', waitingKey, '(' .. formatInteger(now), '+inf') }
local holders = redis.call('ZRANGEBYSCORE', holdersKey, '(' .. formatInteger(now), '+inf', 'WITHSCORES')
for i = 1, #holders, 2 do
  reply[#reply + 1] = holders[i]
  reply[#reply + 1] = tonumber(redis.call('HGET', weightsKey, holders[i])) or 0
  reply[#reply + 1] = tonumber(holders[i + 1]) - now
end
return reply
