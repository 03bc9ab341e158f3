local lockKey = KEYS[1]
local token, ttlMs = ARGV[1], tonumber(ARGV[2])
-- Resets the lease of `token` to `ttlMs` from now. Returns 1, or 0 when `token` no longer holds.

local holderField = '#' .. token
local found = redis.call('HMGET', lockKey, holderField, 'kept')
if not found[1] then
  return 0
end
local _, now = serverTime()
local _, readHolder = readers()
local leaseEnd, weight, owner = readHolder(found[1])
if leaseEnd <= now then
  redis.call('HDEL', lockKey, holderField)
  return 0
end
leaseEnd = now + ttlMs
commit(lockKey, { holderField, holderValue(leaseEnd, weight, owner) }, {}, tonumber(found[2]) or 0, leaseEnd)
return 1
