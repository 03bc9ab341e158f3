local holdersKey, weightsKey, fenceKey = KEYS[1], KEYS[2], KEYS[3]
local token, ttlMs = ARGV[1], tonumber(ARGV[2])
-- Resets the lease of `token` to `ttlMs` from now. Returns 1, or 0 when `token` no longer holds.

local _, now = serverTime()
prune(holdersKey, weightsKey, nil, nil, now)
if not redis.call('ZSCORE', holdersKey, token) then
  return 0
end
redis.call('ZADD', holdersKey, 'XX', formatInteger(now + ttlMs), token)
expireWithLeases(holdersKey, weightsKey, fenceKey, now)
return 1
