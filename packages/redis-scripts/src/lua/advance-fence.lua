local holdersKey, weightsKey, fenceKey = KEYS[1], KEYS[2], KEYS[3]
local fence = tonumber(ARGV[1])
-- Makes every later fence of the lock exceed `fence` (a quorum writes its winning fence back).
-- Returns the fence now stored.

local _, now = serverTime()
local stored = math.max(tonumber(redis.call('GET', fenceKey)) or 0, fence)
redis.call('SET', fenceKey, formatInteger(stored))
expireWithLeases(holdersKey, weightsKey, fenceKey, now)
return stored
