local lockKey = KEYS[1]
local fence = tonumber(ARGV[1])
-- Makes every later fence of the lock exceed `fence` (a quorum writes its winning fence back).
-- Returns the fence now stored.

local _, now = serverTime()
local found = redis.call('HMGET', lockKey, 'fence', 'kept')
local stored = math.max(tonumber(found[1]) or 0, fence)
local newKept = renewedKept(tonumber(found[2]) or 0, now)
if newKept then
  redis.call('HSET', lockKey, 'fence', stored, 'kept', newKept)
  redis.call('PEXPIREAT', lockKey, newKept)
else
  redis.call('HSET', lockKey, 'fence', stored)
end
return stored
