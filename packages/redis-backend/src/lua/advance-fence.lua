local lockKey = KEYS[1]
local fence = tonumber(ARGV[1])
-- Makes every later fence of the lock exceed `fence` (a quorum writes its winning fence back).
-- Returns the fence now stored.

local _, now = serverTime()
local found = redis.call('HMGET', lockKey, 'fence', 'kept')
local stored = math.max(tonumber(found[1]) or 0, fence)
commit(lockKey, { 'fence', stored }, {}, tonumber(found[2]) or 0, now)
return stored
