local holdersKey, weightsKey, fenceKey, queueKey, waitingKey, channel = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local token, publish = ARGV[1], ARGV[2]
-- Gives back what `token` holds and its queue place, if any, and tells waiters when that freed
-- something. Returns 1 when `token` held permits, 0 when it held none.

local _, now = serverTime()
prune(holdersKey, weightsKey, queueKey, waitingKey, now)
local released = redis.call('ZREM', holdersKey, token)
redis.call('HDEL', weightsKey, token)
local leftQueue = redis.call('ZREM', queueKey, token)
redis.call('ZREM', waitingKey, token)
if released == 1 then
  expireWithLeases(holdersKey, weightsKey, fenceKey, now)
end
if released == 1 or leftQueue == 1 then
  notify(publish, channel, 'released')
end
return released
