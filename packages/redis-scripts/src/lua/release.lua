local holdersKey, weightsKey, fenceKey, queueKey, waitingKey, channel = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local token, publish = ARGV[1], ARGV[2]
-- Gives back what `token` holds and its queue place, if any, and tells waiters when that freed
-- something. Returns 1 when `token` held permits, 0 when it held none (or its lease had expired).
-- Other holders and the fence are left as they are: their expiry only ever needs to cover the
-- leases still running, and giving one back shortens none of them.

local _, now = serverTime()
local released = 0
local expiresAt = redis.call('ZSCORE', holdersKey, token)
if expiresAt then
  redis.call('ZREM', holdersKey, token)
  redis.call('HDEL', weightsKey, token)
  -- A lease that ran out was no longer held: giving it back frees nothing and wakes nobody.
  if tonumber(expiresAt) > now then
    released = 1
  end
end
local leftQueue = 0
if redis.call('EXISTS', queueKey) == 1 then
  prune(holdersKey, weightsKey, queueKey, waitingKey, now)
  leftQueue = redis.call('ZREM', queueKey, token)
  redis.call('ZREM', waitingKey, token)
end
if released == 1 or leftQueue == 1 then
  notify(publish, channel, 'released')
end
return released
